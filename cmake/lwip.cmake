# lwIP 2.1.3, a dependency taken from Debian's `lwip` source package and never copied into the
# tree. At configure time: KEEL_LWIP_DIR (an unpacked lwIP 2.1.3 tree) if given, else
# ${KEEL_CACHE_DIR}/lwip/lwip-2.1.3, fetched there by scripts/fetch-lwip.sh when missing.
#
# Defines:
#   keel_lwip       guest object library (C, freestanding), linked into images that use keel_net
#                   (keel::lwip, installed with the SDK; no headers: only net/ sees lwIP's)
#   keel_lwip_host  static library for the host unit tests (ASan/UBSan)
#   KEEL_LWIP_INCLUDE_DIRS  lwIP's headers + net/port (lwipopts.h, arch/cc.h); for net/ only
set(KEEL_LWIP_VERSION 2.1.3)

if(NOT KEEL_CACHE_DIR)
    if(DEFINED ENV{HOME} AND NOT "$ENV{HOME}" STREQUAL "")
        set(KEEL_CACHE_DIR "$ENV{HOME}/.cache/keel")
    else()
        set(KEEL_CACHE_DIR "${CMAKE_BINARY_DIR}/.cache/keel")
    endif()
endif()
set(KEEL_CACHE_DIR "${KEEL_CACHE_DIR}" CACHE PATH "Where keel keeps fetched dependencies (lwIP)")

if(NOT KEEL_LWIP_DIR)
    set(lwip_fetch_dest "${KEEL_CACHE_DIR}/lwip")
    set(lwip_dir "${lwip_fetch_dest}/lwip-${KEEL_LWIP_VERSION}")
    if(NOT EXISTS "${lwip_dir}/src/core/tcp.c")
        message(STATUS "lwIP ${KEEL_LWIP_VERSION}: fetching Debian's source package into ${lwip_fetch_dest}")
        execute_process(
            COMMAND bash "${KEEL_ROOT}/scripts/fetch-lwip.sh" "${lwip_fetch_dest}"
            RESULT_VARIABLE lwip_rc)
        if(NOT lwip_rc EQUAL 0 OR NOT EXISTS "${lwip_dir}/src/core/tcp.c")
            message(FATAL_ERROR
                "lwIP ${KEEL_LWIP_VERSION} is missing and scripts/fetch-lwip.sh failed (exit ${lwip_rc}).\n"
                "It needs apt with a deb-src entry for bookworm main (the script adds one) and dpkg-dev.\n"
                "Or unpack lwIP ${KEEL_LWIP_VERSION} yourself and configure with -DKEEL_LWIP_DIR=<its top directory>.")
        endif()
    endif()
    set(KEEL_LWIP_DIR "${lwip_dir}" CACHE PATH "Top directory of an unpacked lwIP ${KEEL_LWIP_VERSION} source tree")
endif()
if(NOT EXISTS "${KEEL_LWIP_DIR}/src/core/tcp.c")
    message(FATAL_ERROR "KEEL_LWIP_DIR=${KEEL_LWIP_DIR} is not an lwIP source tree (no src/core/tcp.c)")
endif()
if(EXISTS "${KEEL_LWIP_DIR}/KEEL-DEBIAN-VERSION")
    file(STRINGS "${KEEL_LWIP_DIR}/KEEL-DEBIAN-VERSION" lwip_debian_version LIMIT_COUNT 1)
    message(STATUS "lwIP: Debian ${lwip_debian_version} in ${KEEL_LWIP_DIR}")
endif()

# Raw API only: the core (IPv4 and IPv6), Ethernet. No api/ (sockets, netconn), no apps.
set(lwip_src "${KEEL_LWIP_DIR}/src")
set(KEEL_LWIP_SOURCES
    ${lwip_src}/core/def.c ${lwip_src}/core/dns.c ${lwip_src}/core/inet_chksum.c ${lwip_src}/core/init.c
    ${lwip_src}/core/ip.c ${lwip_src}/core/mem.c ${lwip_src}/core/memp.c ${lwip_src}/core/netif.c
    ${lwip_src}/core/pbuf.c ${lwip_src}/core/raw.c ${lwip_src}/core/stats.c ${lwip_src}/core/sys.c
    ${lwip_src}/core/tcp.c ${lwip_src}/core/tcp_in.c ${lwip_src}/core/tcp_out.c ${lwip_src}/core/timeouts.c
    ${lwip_src}/core/udp.c
    ${lwip_src}/core/ipv4/autoip.c ${lwip_src}/core/ipv4/dhcp.c ${lwip_src}/core/ipv4/etharp.c
    ${lwip_src}/core/ipv4/icmp.c ${lwip_src}/core/ipv4/igmp.c ${lwip_src}/core/ipv4/ip4.c
    ${lwip_src}/core/ipv4/ip4_addr.c ${lwip_src}/core/ipv4/ip4_frag.c
    ${lwip_src}/core/ipv6/dhcp6.c ${lwip_src}/core/ipv6/ethip6.c ${lwip_src}/core/ipv6/icmp6.c
    ${lwip_src}/core/ipv6/inet6.c ${lwip_src}/core/ipv6/ip6.c ${lwip_src}/core/ipv6/ip6_addr.c
    ${lwip_src}/core/ipv6/ip6_frag.c ${lwip_src}/core/ipv6/mld6.c ${lwip_src}/core/ipv6/nd6.c
    ${lwip_src}/netif/ethernet.c)
set(KEEL_LWIP_INCLUDE_DIRS "${KEEL_ROOT}/net/port" "${lwip_src}/include")
# For the lwip_input fuzz target (tests/fuzz), which builds lwIP's C with clang itself.
set_property(GLOBAL PROPERTY KEEL_LWIP_SOURCES ${KEEL_LWIP_SOURCES})
set_property(GLOBAL PROPERTY KEEL_LWIP_INCLUDE_DIRS ${KEEL_LWIP_INCLUDE_DIRS})

# lwIP's pool objects: every caller of memp_malloc/memp_free reaches keel's capped pools
# (net/src/pools.cc) through a rename in lwipopts.h, except memp.c itself, which defines them.
set(KEEL_LWIP_MEMP_SOURCE ${lwip_src}/core/memp.c)
set_source_files_properties(${KEEL_LWIP_MEMP_SOURCE} PROPERTIES COMPILE_DEFINITIONS KEEL_LWIP_MEMP_C)
set_property(GLOBAL PROPERTY KEEL_LWIP_MEMP_SOURCE ${KEEL_LWIP_MEMP_SOURCE})

# lwIP's own code builds with our warning set (-Wall -Wextra -Wshadow -Wvla -Werror) and the
# options in net/port/lwipopts.h without relaxing anything. Should a later lwIP or an option
# change need it, relax the one warning here, for these files only, with the reason beside it.
set(KEEL_LWIP_WARNINGS -Wall -Wextra -Wshadow -Wvla -Werror)

add_library(keel_lwip OBJECT ${KEEL_LWIP_SOURCES})
keel_guest_flags(keel_lwip)
keel_install_guest_library(keel_lwip)   # keel::lwip; in the SDK too, for keel::net
target_compile_options(keel_lwip PRIVATE ${KEEL_LWIP_WARNINGS})
target_include_directories(keel_lwip PRIVATE ${KEEL_LWIP_INCLUDE_DIRS})

# icmp6.c (icmp6_send_response) applies ip_2_ip6() to a null pointer and tests the result for
# null on the next line: the member is at offset 0, so it works, but UBSan's null check reports
# it (found by the lwip_input fuzz target). The sanitized builds (host tests, fuzz) skip that one
# check for this one file; every other check stays on.
set(KEEL_LWIP_ICMP6_NULL_EXCEPTION ${lwip_src}/core/ipv6/icmp6.c)
set_source_files_properties(${KEEL_LWIP_ICMP6_NULL_EXCEPTION} PROPERTIES COMPILE_OPTIONS -fno-sanitize=null)
set_property(GLOBAL PROPERTY KEEL_LWIP_NULL_EXCEPTION ${KEEL_LWIP_ICMP6_NULL_EXCEPTION})

if(KEEL_TESTS)
    add_library(keel_lwip_host STATIC ${KEEL_LWIP_SOURCES})
    target_compile_options(keel_lwip_host PRIVATE -O1 -g -fsanitize=address,undefined
        -fno-sanitize-recover=all -fno-omit-frame-pointer ${KEEL_LWIP_WARNINGS})
    target_link_options(keel_lwip_host PUBLIC -fsanitize=address,undefined)
    target_include_directories(keel_lwip_host PRIVATE ${KEEL_LWIP_INCLUDE_DIRS})
endif()
