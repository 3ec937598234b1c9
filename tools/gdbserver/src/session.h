// One gdb connection to one Target: the commands of the remote protocol that attach, inspect,
// continue and detach (see ../README.md for the list and for what is refused and why).
//
//   Session s(target);                        // pauses the target
//   send(s.receive(bytes_from_gdb));          // repeat; while running(), call poll() now and then
//   ...until s.finished()                     // after D or k: the target runs again
//
// The destructor resumes a target still paused by this session, so a lost connection never
// leaves the guest stopped.
#pragma once

#include <string>
#include <string_view>

#include "packet.h"
#include "target.h"

namespace keel::gdbserver {

class Session {
public:
    /// Pauses the target: gdb expects a stopped machine after it connects. ok() is false if
    /// that failed (then nothing else works).
    explicit Session(Target& target, unsigned vcpu = 0);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    bool ok() const { return paused_; }
    /// Feeds bytes read from gdb; returns the bytes to send back (acks and framed replies).
    std::string receive(std::string_view bytes);
    /// While running: reports the end of the domain to gdb ("X09") if it went away.
    std::string poll();
    bool running() const { return running_; }
    /// After D, k or the domain's end: the connection may close.
    bool finished() const { return finished_; }

    /// The reply to one packet body, unframed ("" = not supported, or no reply for c).
    /// Public for the tests.
    std::string handle(const std::string& body);

private:
    std::string reply(std::string_view body);
    std::string read_memory(std::string_view args);
    std::string write_memory(std::string_view args);
    std::string read_register(std::string_view args);
    std::string stop();
    bool fetch(Registers& regs);

    Target& target_;
    unsigned vcpu_;
    PacketReader reader_;
    bool ack_mode_ = true;
    bool paused_ = false;
    bool running_ = false;
    bool finished_ = false;
    std::string last_;  // the last framed reply, for a '-' from gdb
};

}  // namespace keel::gdbserver
