# Decides whether the tests are built. TOKENGATE_TESTS (cache) is AUTO, ON or
# OFF; afterwards the normal variable TOKENGATE_TESTS is ON or OFF, which is
# what test/ and test/fuzz test. ON fails the configure when a test dependency
# is missing, AUTO says what is missing and builds tokengate without tests.
string(TOUPPER "${TOKENGATE_TESTS}" tokengate_tests_mode)
if(tokengate_tests_mode STREQUAL "AUTO" OR tokengate_tests_mode STREQUAL "ON"
   OR tokengate_tests_mode STREQUAL "TRUE" OR tokengate_tests_mode STREQUAL "1")
  pkg_check_modules(CRITERION QUIET IMPORTED_TARGET criterion>=2.4)
  find_program(TOKENGATE_H2LOAD NAMES h2load)
  set(tokengate_tests_missing "")
  if(NOT CRITERION_FOUND)
    list(APPEND tokengate_tests_missing "Criterion (libcriterion-dev)")
  endif()
  if(NOT TOKENGATE_H2LOAD)
    list(APPEND tokengate_tests_missing "h2load (nghttp2-client)")
  endif()
  if(tokengate_tests_missing)
    list(JOIN tokengate_tests_missing ", " tokengate_tests_missing)
    set(tokengate_tests_msg "the tests need ${tokengate_tests_missing}, which `scripts/setup.sh test` installs")
    if(tokengate_tests_mode STREQUAL "AUTO")
      message(WARNING "tokengate: tests are not built: ${tokengate_tests_msg} "
                      "(-DTOKENGATE_TESTS=OFF silences this)")
      set(TOKENGATE_TESTS OFF)
    else()
      message(FATAL_ERROR "tokengate: TOKENGATE_TESTS=ON but ${tokengate_tests_msg}")
    endif()
  else()
    set(TOKENGATE_TESTS ON)
  endif()
else()
  set(TOKENGATE_TESTS OFF)
endif()
