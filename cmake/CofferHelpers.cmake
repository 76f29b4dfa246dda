# Declarative helpers in the manner of Abseil's absl_cc_library().

set(COFFER_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-qual
    -Wformat=2 -Wimplicit-fallthrough -Wvla -Wold-style-cast)
if(COFFER_WERROR)
  list(APPEND COFFER_WARNINGS -Werror)
endif()

# coffer_cc_library(NAME n SRCS ... DEPS ...)
function(coffer_cc_library)
  cmake_parse_arguments(CC "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(${CC_NAME} STATIC ${CC_SRCS})
  # Build-tree paths only: the installed SDK exports these targets, and its
  # users see include/coffer and nothing of src/.
  target_include_directories(${CC_NAME} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>
                             $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>)
  target_compile_options(${CC_NAME} PRIVATE ${COFFER_WARNINGS})
  target_link_libraries(${CC_NAME} PUBLIC ${CC_DEPS})
endfunction()

# coffer_cc_test(NAME n SRCS ... DEPS ...): a GoogleTest binary registered with ctest.
# Every test links coffer_testing (src/common/testing: bounded waits, temporary
# directories), which no other target links, and the sanitizer build's default
# options (src/common/sanitizer_options.cc), as `coffer` does.
function(coffer_cc_test)
  cmake_parse_arguments(CC "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${CC_NAME} ${CC_SRCS})
  target_compile_options(${CC_NAME} PRIVATE ${COFFER_WARNINGS})
  target_link_libraries(${CC_NAME} PRIVATE ${CC_DEPS} coffer_testing coffer_sanitizer_options
                        GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${CC_NAME} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS unit)
endfunction()
