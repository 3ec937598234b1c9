# Build rules shared by every folder: guest (freestanding) and host (unit test) flavours of a
# library, and keel_add_service(), which turns C++ sources into a bootable PVH image + xl config.

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS ON)   # GNU statement expressions (TRY)
set(KEEL_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR})
set(KEEL_ROOT ${CMAKE_CURRENT_LIST_DIR}/..)

# Xen's public headers describe the interface of this version (Xen 4.14+ ABI; 4.17 is tested).
set(KEEL_XEN_DEFS -D__XEN_INTERFACE_VERSION__=0x00040e00)

# The freestanding C++ subset, written down once (see docs/cxx-subset.md).
set(KEEL_GUEST_CXX_FLAGS
    -ffreestanding -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit
    -fno-asynchronous-unwind-tables -fno-omit-frame-pointer
    -mno-red-zone -fno-pie -fno-pic -mcmodel=small
    -fstack-protector-strong -mstack-protector-guard=global
    -O2 -g -Wall -Wextra -Wshadow -Wvla -Werror ${KEEL_XEN_DEFS})
set(KEEL_GUEST_ASM_FLAGS -fno-pie -fno-pic -g)
set(KEEL_HOST_FLAGS -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer -Wall -Wextra -Wshadow -Wvla -Werror ${KEEL_XEN_DEFS})

function(keel_guest_flags target)
    target_compile_options(${target} PRIVATE
        $<$<COMPILE_LANGUAGE:CXX>:${KEEL_GUEST_CXX_FLAGS}>
        $<$<COMPILE_LANGUAGE:C>:-ffreestanding -fno-pie -fno-pic -mno-red-zone -O2 -g>
        $<$<COMPILE_LANGUAGE:ASM>:${KEEL_GUEST_ASM_FLAGS}>)
    target_compile_definitions(${target} PRIVATE KEEL_GUEST=1)
endfunction()

# keel_library(NAME PURE <host-testable sources> GUEST <guest-only sources>
#              INCLUDE <public include dir> DEPENDS <other keel libraries> [APP])
# Creates NAME (guest object library: PURE + GUEST sources, freestanding flags) and, with
# KEEL_TESTS, NAME_host (static library: PURE sources, host flags with sanitizers).
# Without APP the library is part of every image (kernel, console, platform); with APP only the
# images that name it in keel_add_service(... LIBS NAME) link it, with its DEPENDS.
function(keel_library name)
    cmake_parse_arguments(A "APP" "" "PURE;GUEST;INCLUDE;DEPENDS" ${ARGN})
    if(NOT A_PURE AND NOT A_GUEST)
        message(FATAL_ERROR "keel_library(${name}): no sources")
    endif()
    add_library(${name} OBJECT ${A_PURE} ${A_GUEST})
    keel_guest_flags(${name})
    target_include_directories(${name} PUBLIC ${A_INCLUDE})
    # What the library may include: its DEPENDS and, transitively, theirs (all defined before).
    set(closure)
    set(queue ${A_DEPENDS})
    while(queue)
        list(POP_FRONT queue dep)
        if(NOT dep IN_LIST closure)
            list(APPEND closure ${dep})
            get_property(more TARGET ${dep} PROPERTY KEEL_DEPENDS)
            list(APPEND queue ${more})
        endif()
    endwhile()
    foreach(dep ${closure})
        target_include_directories(${name} PRIVATE $<TARGET_PROPERTY:${dep},INTERFACE_INCLUDE_DIRECTORIES>)
    endforeach()
    if(NOT A_APP)
        set_property(GLOBAL APPEND PROPERTY KEEL_GUEST_LIBRARIES ${name})
    endif()
    # keel_add_service links an APP library's DEPENDS too (those that are APP libraries).
    set_property(TARGET ${name} PROPERTY KEEL_DEPENDS ${A_DEPENDS})
    if(KEEL_TESTS)
        set_property(GLOBAL APPEND PROPERTY KEEL_HOST_LIBRARIES ${name}_host)
        if(A_PURE)
            add_library(${name}_host STATIC ${A_PURE})
        else()
            add_library(${name}_host INTERFACE)
        endif()
        if(A_PURE)
            target_compile_options(${name}_host PRIVATE ${KEEL_HOST_FLAGS})
            target_link_options(${name}_host PUBLIC -fsanitize=address,undefined)
            target_include_directories(${name}_host PUBLIC ${A_INCLUDE})
            foreach(dep ${A_DEPENDS})
                target_link_libraries(${name}_host PUBLIC ${dep}_host)
            endforeach()
        else()
            target_include_directories(${name}_host INTERFACE ${A_INCLUDE})
        endif()
    endif()
endfunction()

# keel_add_service(NAME SOURCES <files> [MEMORY <MiB>] [CMDLINE <string>] [LIBS <app libraries>]
#                  [XL <extra xl config lines>...])
# Produces ${CMAKE_CURRENT_BINARY_DIR}/NAME.xen (PVH ELF, symbols kept, with a symbol table
# built in for backtraces) and NAME.xl (ready xl config).
function(keel_add_service name)
    cmake_parse_arguments(A "" "MEMORY;CMDLINE" "SOURCES;LIBS;XL" ${ARGN})
    if(NOT A_MEMORY)
        set(A_MEMORY 16)
    endif()
    add_library(${name}_app OBJECT ${A_SOURCES})
    keel_guest_flags(${name}_app)
    get_property(libs GLOBAL PROPERTY KEEL_GUEST_LIBRARIES)
    # The app libraries named, and everything they depend on that is not already in.
    set(queue ${A_LIBS})
    while(queue)
        list(POP_FRONT queue lib)
        if(lib IN_LIST libs)
            continue()
        endif()
        list(APPEND libs ${lib})
        get_property(deps TARGET ${lib} PROPERTY KEEL_DEPENDS)
        list(APPEND queue ${deps})
    endwhile()
    set(objs $<TARGET_OBJECTS:${name}_app>)
    foreach(lib ${libs})
        target_include_directories(${name}_app PRIVATE $<TARGET_PROPERTY:${lib},INTERFACE_INCLUDE_DIRECTORIES>)
        list(APPEND objs $<TARGET_OBJECTS:${lib}>)
    endforeach()
    set(ld ${KEEL_ROOT}/platform-xen/guest/link.ld)
    set(link_opts -nostdlib -static -no-pie -Wl,-T,${ld} -Wl,--build-id=none
        -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments)

    # Pass 1: link with an empty symbol table; its addresses are final because the table is
    # placed last in the image (see link.ld).
    add_executable(${name}_pass1 ${objs} ${KEEL_CMAKE_DIR}/ksyms-empty.S)
    target_link_options(${name}_pass1 PRIVATE ${link_opts})
    target_link_libraries(${name}_pass1 PRIVATE gcc)
    set_target_properties(${name}_pass1 PROPERTIES LINK_DEPENDS ${ld} LINKER_LANGUAGE CXX)
    keel_guest_flags(${name}_pass1)

    set(ksyms ${CMAKE_CURRENT_BINARY_DIR}/${name}_ksyms.S)
    add_custom_command(OUTPUT ${ksyms}
        COMMAND sh ${KEEL_CMAKE_DIR}/gen-ksyms.sh $<TARGET_FILE:${name}_pass1> ${ksyms}
        DEPENDS ${name}_pass1 ${KEEL_CMAKE_DIR}/gen-ksyms.sh
        COMMENT "Symbol table for ${name}")

    add_executable(${name}_image ${objs} ${ksyms})
    target_link_options(${name}_image PRIVATE ${link_opts})
    target_link_libraries(${name}_image PRIVATE gcc)
    set_target_properties(${name}_image PROPERTIES OUTPUT_NAME ${name} SUFFIX .xen
        LINK_DEPENDS ${ld} LINKER_LANGUAGE CXX)
    keel_guest_flags(${name}_image)
    # Refuse an image whose layout moved between the passes or that lost its PVH note.
    # NAME.map: the image's symbols as dom0's xenctx reads them (README, "Debug from dom0").
    add_custom_command(TARGET ${name}_image POST_BUILD
        COMMAND bash ${KEEL_CMAKE_DIR}/check-image.sh $<TARGET_FILE:${name}_pass1> $<TARGET_FILE:${name}_image>
        COMMAND sh ${KEEL_CMAKE_DIR}/gen-map.sh $<TARGET_FILE:${name}_image> ${CMAKE_CURRENT_BINARY_DIR}/${name}.map
        VERBATIM)

    set(KEEL_XL_NAME ${name})
    set(KEEL_XL_KERNEL ${CMAKE_CURRENT_BINARY_DIR}/${name}.xen)
    set(KEEL_XL_MEMORY ${A_MEMORY})
    set(KEEL_XL_CMDLINE "${A_CMDLINE}")
    list(JOIN A_XL "\n" KEEL_XL_EXTRA)
    configure_file(${KEEL_CMAKE_DIR}/service.xl.in ${CMAKE_CURRENT_BINARY_DIR}/${name}.xl @ONLY)
endfunction()
