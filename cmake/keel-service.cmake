# The guest compile flags and keel_add_service(): the one implementation shared by the tree
# (cmake/keel.cmake includes this file) and the installed SDK (keelConfig.cmake includes the copy
# installed in lib/cmake/keel, beside the scripts and templates it uses, as it is here).
#
# What differs between the two is where the libraries come from, and the rules below find them
# by name only. A guest library is the target keel::NAME (LIBS accepts keel_NAME too): in the
# tree an alias of the object library keel_library() made; installed, an imported object
# library whose objects are files in lib/keel/objects. Two global properties hold the rest:
#   KEEL_GUEST_LIBRARIES  the libraries every image links (platform, kernel, console, ...), in
#                         link order
#   KEEL_LINK_SCRIPT      the guest linker script (platform-xen/guest/link.ld)
# and each library's KEEL_DEPENDS property names the libraries it needs.

# Xen's public headers describe the interface of this version (Xen 4.14+ ABI; 4.17 is tested).
set(KEEL_XEN_DEFS -D__XEN_INTERFACE_VERSION__=0x00040e00)

# The freestanding C++ subset, written down once (see docs/cxx-subset.md).
set(KEEL_GUEST_CXX_FLAGS
    -ffreestanding -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit
    -fno-asynchronous-unwind-tables -fno-omit-frame-pointer
    -mno-red-zone -fno-pie -fno-pic -mcmodel=small
    -fstack-protector-strong -mstack-protector-guard=global
    -ffunction-sections -fdata-sections
    -O2 -g -Wall -Wextra -Wshadow -Wvla -Werror ${KEEL_XEN_DEFS})
set(KEEL_GUEST_ASM_FLAGS -fno-pie -fno-pic -g)

function(keel_guest_flags target)
    target_compile_options(${target} PRIVATE
        $<$<COMPILE_LANGUAGE:CXX>:${KEEL_GUEST_CXX_FLAGS}>
        $<$<COMPILE_LANGUAGE:C>:-ffreestanding -fno-pie -fno-pic -mno-red-zone -ffunction-sections -fdata-sections -O2 -g>
        $<$<COMPILE_LANGUAGE:ASM>:${KEEL_GUEST_ASM_FLAGS}>)
    target_compile_definitions(${target} PRIVATE KEEL_GUEST=1)
    # C++20 with GNU extensions (statement expressions: TRY), also where the including project
    # sets no standard.
    set_target_properties(${target} PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS ON)
endfunction()

# keel_guest_library_target(OUT NAME): the target of guest library NAME (keel::net or keel_net)
# in OUT, as keel::net; a clear error if there is none.
function(keel_guest_library_target out name)
    string(REGEX REPLACE "^keel_" "keel::" target "${name}")
    if(NOT TARGET ${target})
        message(FATAL_ERROR "keel: no guest library ${name} (the libraries are keel::NAME, e.g. keel::net)")
    endif()
    set(${out} ${target} PARENT_SCOPE)
endfunction()

# keel_add_service(NAME SOURCES <files> [MEMORY <MiB>] [CMDLINE <string>] [LIBS <app libraries>]
#                  [XL <extra xl config lines>...])
# Produces ${CMAKE_CURRENT_BINARY_DIR}/NAME.xen (PVH and PV ELF, symbols kept, with a symbol
# table built in for backtraces), NAME.xl (ready xl config, type = "pvh"), NAME-pv.xl (the same
# image and settings as a classic PV guest named NAME-pv; docs/pv.md says how far PV boots) and
# NAME.map (symbols for xenctx).
# LIBS: the app libraries the service uses (keel::net, keel::blkfront, ...); what they depend
# on comes with them.
function(keel_add_service name)
    cmake_parse_arguments(A "" "MEMORY;CMDLINE" "SOURCES;LIBS;XL" ${ARGN})
    if(NOT A_MEMORY)
        set(A_MEMORY 16)
    endif()
    # The scripts and the xl template sit beside this file, in the tree and installed alike.
    set(here ${CMAKE_CURRENT_FUNCTION_LIST_DIR})
    get_property(ld GLOBAL PROPERTY KEEL_LINK_SCRIPT)
    add_library(${name}_app OBJECT ${A_SOURCES})
    keel_guest_flags(${name}_app)
    set(libs)
    get_property(core GLOBAL PROPERTY KEEL_GUEST_LIBRARIES)
    foreach(lib ${core})
        keel_guest_library_target(target ${lib})
        list(APPEND libs ${target})
    endforeach()
    # The app libraries named, and everything they depend on that is not already in.
    set(queue ${A_LIBS})
    while(queue)
        list(POP_FRONT queue lib)
        keel_guest_library_target(target ${lib})
        if(target IN_LIST libs)
            continue()
        endif()
        list(APPEND libs ${target})
        get_property(deps TARGET ${target} PROPERTY KEEL_DEPENDS)
        list(APPEND queue ${deps})
    endwhile()
    set(objs $<TARGET_OBJECTS:${name}_app>)
    foreach(lib ${libs})
        target_include_directories(${name}_app PRIVATE $<TARGET_PROPERTY:${lib},INTERFACE_INCLUDE_DIRECTORIES>)
        list(APPEND objs $<TARGET_OBJECTS:${lib}>)
    endforeach()
    # --gc-sections: an image keeps only the code and data reachable from its entry, its init
    # entries and its notes (each function and object in a section of its own; link.ld KEEPs the
    # roots). hello: 217,880 -> 131,792 bytes stripped. -n: no page padding between the segments
    # in the file (link.ld).
    set(link_opts -nostdlib -static -no-pie -Wl,-T,${ld} -Wl,--build-id=none
        -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments -Wl,--gc-sections -Wl,-n)

    # Pass 1: link with an empty symbol table; its addresses are final because the table is
    # placed last in the image (see link.ld).
    add_executable(${name}_pass1 ${objs} ${here}/ksyms-empty.S)
    target_link_options(${name}_pass1 PRIVATE ${link_opts})
    target_link_libraries(${name}_pass1 PRIVATE gcc)
    set_target_properties(${name}_pass1 PROPERTIES LINK_DEPENDS ${ld} LINKER_LANGUAGE CXX)
    keel_guest_flags(${name}_pass1)

    set(ksyms ${CMAKE_CURRENT_BINARY_DIR}/${name}_ksyms.S)
    add_custom_command(OUTPUT ${ksyms}
        COMMAND sh ${here}/gen-ksyms.sh $<TARGET_FILE:${name}_pass1> ${ksyms}
        DEPENDS ${name}_pass1 ${here}/gen-ksyms.sh
        COMMENT "Symbol table for ${name}")

    add_executable(${name}_image ${objs} ${ksyms})
    # NAME.link.map: the linker's map, what scripts/size-breakdown.py sums per component.
    target_link_options(${name}_image PRIVATE ${link_opts} -Wl,-Map=${CMAKE_CURRENT_BINARY_DIR}/${name}.link.map)
    target_link_libraries(${name}_image PRIVATE gcc)
    set_target_properties(${name}_image PROPERTIES OUTPUT_NAME ${name} SUFFIX .xen
        LINK_DEPENDS ${ld} LINKER_LANGUAGE CXX)
    keel_guest_flags(${name}_image)
    # Refuse an image whose layout moved between the passes or that lost its PVH note.
    # NAME.map: the image's symbols as dom0's xenctx reads them (README, "Debug from dom0").
    add_custom_command(TARGET ${name}_image POST_BUILD
        COMMAND bash ${here}/check-image.sh $<TARGET_FILE:${name}_pass1> $<TARGET_FILE:${name}_image>
        COMMAND sh ${here}/gen-map.sh $<TARGET_FILE:${name}_image> ${CMAKE_CURRENT_BINARY_DIR}/${name}.map
        VERBATIM)

    set(KEEL_XL_NAME ${name})
    set(KEEL_XL_KERNEL ${CMAKE_CURRENT_BINARY_DIR}/${name}.xen)
    set(KEEL_XL_MEMORY ${A_MEMORY})
    set(KEEL_XL_CMDLINE "${A_CMDLINE}")
    list(JOIN A_XL "\n" KEEL_XL_EXTRA)
    set(KEEL_XL_TYPE pvh)
    configure_file(${here}/service.xl.in ${CMAKE_CURRENT_BINARY_DIR}/${name}.xl @ONLY)
    # The same image as a classic PV guest (docs/pv.md: how far PV boots today), named NAME-pv
    # so that both can run side by side.
    set(KEEL_XL_NAME ${name}-pv)
    set(KEEL_XL_TYPE pv)
    configure_file(${here}/service.xl.in ${CMAKE_CURRENT_BINARY_DIR}/${name}-pv.xl @ONLY)
endfunction()
