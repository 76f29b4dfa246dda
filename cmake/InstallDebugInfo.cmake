# Install-time script (see the top CMakeLists): debug information leaves the
# installed files. The program keeps a stripped copy with a .gnu_debuglink to
# <prefix>/lib/debug/<its absolute directory>/<name>.debug, with compressed
# sections, where gdb looks for it when the prefix is /usr (for another prefix:
# `set debug-file-directory <prefix>/lib/debug`). Static libraries lose their
# debug information, as distributions' packages of them do.
#
# Expects COFFER_OBJCOPY, COFFER_OBJDUMP, COFFER_PROGRAMS (paths relative to the
# prefix) and COFFER_LIBDIR, where the SDK's libcoffer_*.a are. Files without
# debug information (a Release build) are left alone.

set(prefix "${CMAKE_INSTALL_PREFIX}")
set(root "$ENV{DESTDIR}")

function(has_debug_info file out)
  execute_process(COMMAND "${COFFER_OBJDUMP}" -h "${file}" OUTPUT_VARIABLE sections
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "objdump -h ${file} failed (${rc})")
  endif()
  string(FIND "${sections}" " .debug_info " at)
  if(at EQUAL -1)
    set(${out} FALSE PARENT_SCOPE)
  else()
    set(${out} TRUE PARENT_SCOPE)
  endif()
endfunction()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " line "${ARGN}")
    message(FATAL_ERROR "${line}: exit status ${rc}")
  endif()
endfunction()

foreach(rel IN LISTS COFFER_PROGRAMS)
  set(file "${root}${prefix}/${rel}")
  has_debug_info("${file}" debug)
  if(NOT debug)
    continue()
  endif()
  get_filename_component(dir "${prefix}/${rel}" DIRECTORY)
  get_filename_component(name "${rel}" NAME)
  set(debug_file "${root}${prefix}/lib/debug${dir}/${name}.debug")
  get_filename_component(debug_dir "${debug_file}" DIRECTORY)
  file(MAKE_DIRECTORY "${debug_dir}")
  message(STATUS "Debug information: ${debug_file}")
  run("${COFFER_OBJCOPY}" --only-keep-debug --compress-debug-sections=zlib "${file}"
      "${debug_file}")
  file(CHMOD "${debug_file}" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  run("${COFFER_OBJCOPY}" --strip-debug --remove-section=.comment
      "--add-gnu-debuglink=${debug_file}" "${file}")
endforeach()

file(GLOB archives "${root}${prefix}/${COFFER_LIBDIR}/libcoffer_*.a")
foreach(file IN LISTS archives)
  has_debug_info("${file}" debug)
  if(debug)
    run("${COFFER_OBJCOPY}" --strip-debug --enable-deterministic-archives "${file}")
  endif()
endforeach()
