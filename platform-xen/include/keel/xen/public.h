// Xen's public interface headers (libxen-dev, /usr/include/xen), as installed. They expect the
// fixed-width integer types to be declared before them.
#pragma once

#include <stdint.h>

#include <xen/xen.h>
#include <xen/callback.h>
#include <xen/arch-x86/hvm/start_info.h>
#include <xen/event_channel.h>
#include <xen/hvm/hvm_op.h>
#include <xen/hvm/params.h>
#include <xen/memory.h>
#include <xen/sched.h>
#include <xen/vcpu.h>
#include <xen/version.h>
