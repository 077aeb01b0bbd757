# Strict warnings for the project's own code. Generated protobuf-c code and
# third-party headers are not held to this set.
set(TOKENGATE_STRICT_WARNINGS
  -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Wvla
  -Wmissing-prototypes -Wstrict-prototypes -Wold-style-definition
  -Wformat=2 -Wpointer-arith -Wundef -Wcast-align -Wwrite-strings
  -Wimplicit-fallthrough -Wnull-dereference -Wdouble-promotion)

# tokengate_strict(target): apply the strict set (and -Werror when asked).
function(tokengate_strict target)
  target_compile_options(${target} PRIVATE ${TOKENGATE_STRICT_WARNINGS})
  if(TOKENGATE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# tokengate_test_warnings(target): tests keep -Wall -Wextra but not the
# conversion set, which Criterion's assertion macros trip over.
function(tokengate_test_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow)
  if(TOKENGATE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
