# Build rules shared by every folder: guest (freestanding) and host (unit test) flavours of a
# library (keel_library), and the SDK that `cmake --install` puts in a prefix (each guest
# library's objects and headers, keel_install_package). The guest flags and keel_add_service(),
# which turns C++ sources into a bootable PVH image + xl config, are in keel-service.cmake: the
# installed package includes the same file.

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS ON)   # GNU statement expressions (TRY)
set(KEEL_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR})
set(KEEL_ROOT ${CMAKE_CURRENT_LIST_DIR}/..)

include(${KEEL_CMAKE_DIR}/keel-service.cmake)
set_property(GLOBAL PROPERTY KEEL_LINK_SCRIPT ${KEEL_ROOT}/platform-xen/guest/link.ld)

set(KEEL_HOST_FLAGS -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer -Wall -Wextra -Wshadow -Wvla -Werror ${KEEL_XEN_DEFS})

# Where the SDK puts things, below the install prefix.
set(KEEL_INSTALL_CMAKE_DIR lib/cmake/keel)   # keelConfig.cmake, keel-service.cmake, the scripts
set(KEEL_INSTALL_LIB_DIR lib/keel)           # link.ld, objects/ (one folder per library)

# keel_install_guest_library(TARGET [INCLUDE <dirs>]): guest library TARGET (keel_NAME) becomes
# keel::NAME, an alias here and an imported object library in the SDK (its object files are
# installed, not archived: an image links every object as in the tree, static initialisers and
# registrations included). Its headers, the .h files below each INCLUDE dir, are installed
# under include/ (an include/ folder's content) or include/<its path in the tree> (an app
# library's folder, e.g. include/apps/kvstore/kv/store.h), and are what it exports to users.
function(keel_install_guest_library target)
    cmake_parse_arguments(A "" "" "INCLUDE" ${ARGN})
    if(NOT target MATCHES "^keel_(.+)$")
        message(FATAL_ERROR "keel: guest library ${target} must be named keel_NAME")
    endif()
    set(short ${CMAKE_MATCH_1})
    add_library(keel::${short} ALIAS ${target})
    set_target_properties(${target} PROPERTIES EXPORT_NAME ${short} EXPORT_PROPERTIES KEEL_DEPENDS)
    install(TARGETS ${target} EXPORT keelTargets OBJECTS DESTINATION ${KEEL_INSTALL_LIB_DIR}/objects)
    get_filename_component(root ${KEEL_ROOT} ABSOLUTE)
    foreach(dir ${A_INCLUDE})
        get_filename_component(dir ${dir} ABSOLUTE)
        get_filename_component(leaf ${dir} NAME)
        if(leaf STREQUAL "include")
            set(dest include)
        else()
            file(RELATIVE_PATH rel ${root} ${dir})
            set(dest include/${rel})
        endif()
        target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${dir}> $<INSTALL_INTERFACE:${dest}>)
        get_property(done GLOBAL PROPERTY KEEL_INSTALLED_INCLUDE_DIRS)
        if(NOT dir IN_LIST done)   # keel_http and keel_http_conn share theirs
            set_property(GLOBAL APPEND PROPERTY KEEL_INSTALLED_INCLUDE_DIRS ${dir})
            install(DIRECTORY ${dir}/ DESTINATION ${dest} FILES_MATCHING PATTERN "*.h")
        endif()
    endforeach()
endfunction()

# keel_library(NAME PURE <host-testable sources> GUEST <guest-only sources>
#              INCLUDE <public include dir> DEPENDS <other keel libraries> [APP] [SMALL])
# Creates NAME (guest object library: PURE + GUEST sources, freestanding flags) and, with
# KEEL_TESTS, NAME_host (static library: PURE sources, host flags with sanitizers).
# SMALL: compiled for size (-Os), for code off the data path (boot, faults, the control path);
# SMALL_SOURCES: only these of its sources (a library with both kinds of code).
# Without APP the library is part of every image (kernel, console, platform); with APP only the
# images that name it in keel_add_service(... LIBS NAME) link it, with its DEPENDS.
function(keel_library name)
    cmake_parse_arguments(A "APP;SMALL" "" "PURE;GUEST;INCLUDE;DEPENDS;SMALL_SOURCES" ${ARGN})
    if(NOT A_PURE AND NOT A_GUEST)
        message(FATAL_ERROR "keel_library(${name}): no sources")
    endif()
    add_library(${name} OBJECT ${A_PURE} ${A_GUEST})
    keel_guest_flags(${name})
    if(A_SMALL)
        # Off the data path (boot, faults, the control path): optimized for size (-Os after
        # the guest flags' -O2 wins). hello: 110,816 -> 101,656 bytes stripped.
        target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX,C>:-Os>)
    endif()
    if(A_SMALL_SOURCES)   # the guest objects only; the host library keeps the test flags
        set_property(SOURCE ${A_SMALL_SOURCES} APPEND PROPERTY COMPILE_OPTIONS
            $<$<STREQUAL:$<TARGET_PROPERTY:NAME>,${name}>:-Os>)
    endif()
    keel_install_guest_library(${name} INCLUDE ${A_INCLUDE})
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

# keel_install_package(): the rest of the SDK, once every library is defined (top-level
# CMakeLists.txt): the CMake package (keelConfig.cmake, keelConfigVersion.cmake, keelTargets.cmake
# with every keel::NAME) beside keel-service.cmake and what it uses (gen-ksyms.sh, ksyms-empty.S,
# check-image.sh, gen-map.sh, service.xl.in), and the linker script. An outside project then
# writes find_package(keel) and keel_add_service() as apps/ do (README, "Build a service outside
# the tree").
function(keel_install_package)
    include(CMakePackageConfigHelpers)
    set(dest ${KEEL_INSTALL_CMAKE_DIR})
    install(EXPORT keelTargets NAMESPACE keel:: DESTINATION ${dest})
    get_property(KEEL_CORE_LIBRARIES GLOBAL PROPERTY KEEL_GUEST_LIBRARIES)
    list(TRANSFORM KEEL_CORE_LIBRARIES REPLACE "^keel_" "keel::")
    configure_package_config_file(${KEEL_CMAKE_DIR}/keelConfig.cmake.in
        ${CMAKE_BINARY_DIR}/sdk-package/keelConfig.cmake
        INSTALL_DESTINATION ${dest} PATH_VARS KEEL_INSTALL_LIB_DIR)
    write_basic_package_version_file(${CMAKE_BINARY_DIR}/sdk-package/keelConfigVersion.cmake
        VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
    install(FILES ${CMAKE_BINARY_DIR}/sdk-package/keelConfig.cmake
                  ${CMAKE_BINARY_DIR}/sdk-package/keelConfigVersion.cmake
                  ${KEEL_CMAKE_DIR}/keel-service.cmake ${KEEL_CMAKE_DIR}/ksyms-empty.S
                  ${KEEL_CMAKE_DIR}/service.xl.in
            DESTINATION ${dest})
    install(PROGRAMS ${KEEL_CMAKE_DIR}/gen-ksyms.sh ${KEEL_CMAKE_DIR}/check-image.sh
                     ${KEEL_CMAKE_DIR}/gen-map.sh
            DESTINATION ${dest})
    get_property(ld GLOBAL PROPERTY KEEL_LINK_SCRIPT)
    install(FILES ${ld} DESTINATION ${KEEL_INSTALL_LIB_DIR})
endfunction()
