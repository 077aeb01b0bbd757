# What `cmake --install` puts under the prefix (GNU layout):
#   bin/tokengate
#   share/man/man1/tokengate.1
#   share/doc/tokengate/{README.md, config.example.json}
#   lib/systemd/system/tokengate.service   (TOKENGATE_SYSTEMD_UNIT_DIR)
include(GNUInstallDirs)
# Relative paths are under the prefix; systemd also reads /usr/local/lib/systemd/system.
set(TOKENGATE_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING "Where the systemd unit is installed")
set(TOKENGATE_CONFIG_DIR "/etc/tokengate" CACHE PATH "The config folder the systemd unit reads")

install(TARGETS tokengate RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES doc/tokengate.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES examples/demo/config.json DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME config.example.json)
# The unit names the installed binary, so it is written at install time, when
# the prefix is known (`cmake --install build --prefix /opt/tokengate` works).
install(CODE "
  set(TOKENGATE_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  set(TOKENGATE_CONFIG_DIR \"${TOKENGATE_CONFIG_DIR}\")
  configure_file(\"${CMAKE_CURRENT_SOURCE_DIR}/dist/tokengate.service.in\"
                 \"${CMAKE_BINARY_DIR}/dist/tokengate.service\" @ONLY)")
install(FILES ${CMAKE_BINARY_DIR}/dist/tokengate.service DESTINATION ${TOKENGATE_SYSTEMD_UNIT_DIR})
