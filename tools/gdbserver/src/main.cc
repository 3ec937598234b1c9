// keel-gdbserver DOMID [PORT|--stdio]: lets gdb in dom0 debug a running PVH guest.
//   PORT     listen on 127.0.0.1:PORT (loopback only: the stub reads and writes guest memory)
//            for one connection, then exit
//   --stdio  speak on stdin/stdout: gdb's `target remote | keel-gdbserver DOMID --stdio`
// The guest is paused while gdb has it stopped and runs again on continue, detach, kill, a
// lost connection, SIGINT or SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "session.h"
#include "xen_target.h"

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

bool write_all(int fd, const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
        const ssize_t n = write(fd, s.data() + done, s.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

int listen_once(unsigned port) {
    const int ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0) return -1;
    const int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 1) != 0) {
        std::fprintf(stderr, "keel-gdbserver: cannot listen on 127.0.0.1:%u: %s\n", port,
                     std::strerror(errno));
        close(ls);
        return -1;
    }
    std::fprintf(stderr, "keel-gdbserver: listening on 127.0.0.1:%u\n", port);
    int fd = -1;
    while (fd < 0 && !g_stop) {
        fd = accept(ls, nullptr, nullptr);
        if (fd < 0 && errno != EINTR) break;
    }
    close(ls);
    if (fd >= 0) setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
    return fd;
}

int usage() {
    std::fprintf(stderr, "usage: keel-gdbserver DOMID [PORT|--stdio]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) return usage();
    char* end = nullptr;
    const unsigned long domid = std::strtoul(argv[1], &end, 10);
    if (*argv[1] == '\0' || *end != '\0' || domid == 0 || domid >= 0x7ff0) return usage();
    const bool use_stdio = std::strcmp(argv[2], "--stdio") == 0;
    unsigned long port = 0;
    if (!use_stdio) {
        port = std::strtoul(argv[2], &end, 10);
        if (*argv[2] == '\0' || *end != '\0' || port == 0 || port > 65535) return usage();
    }

    struct sigaction sa {};
    sa.sa_handler = on_signal;  // no SA_RESTART: poll() returns EINTR and the loop ends
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);

    std::string why;
    auto target = keel::gdbserver::XenTarget::open(static_cast<std::uint32_t>(domid), why);
    if (!target) {
        std::fprintf(stderr, "keel-gdbserver: %s\n", why.c_str());
        return 1;
    }
    const int in = use_stdio ? STDIN_FILENO : listen_once(static_cast<unsigned>(port));
    const int out = use_stdio ? STDOUT_FILENO : in;
    if (in < 0) return 1;

    keel::gdbserver::Session session(*target);
    if (!session.ok()) {
        std::fprintf(stderr, "keel-gdbserver: cannot pause domain %lu\n", domid);
        return 1;
    }
    std::fprintf(stderr, "keel-gdbserver: domain %lu paused for gdb\n", domid);
    bool was_running = false;
    char buf[4096];
    while (!session.finished() && !g_stop) {
        if (session.running() != was_running) {
            was_running = session.running();
            std::fprintf(stderr, "keel-gdbserver: domain %lu %s\n", domid,
                         was_running ? "continued" : "stopped");
        }
        pollfd p{in, POLLIN, 0};
        const int r = ::poll(&p, 1, 500);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) {
            if (!write_all(out, session.poll())) break;
            continue;
        }
        const ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // gdb went away: the session's end resumes the guest
        if (!write_all(out, session.receive(std::string_view(buf, static_cast<std::size_t>(n))))) break;
    }
    if (!use_stdio) close(in);
    std::fprintf(stderr, "keel-gdbserver: domain %lu released (%s)\n", domid,
                 session.finished() ? "gdb detached"
                 : g_stop           ? "signal"
                                    : "connection closed");
    return 0;  // ~Session resumes a domain still paused
}
