# SecretProviderClass, Azure provider parameters and the agent config file.
# yaml-cpp stays in spc_yaml.cc (tools/check_layering.py); Debian 12's
# libyaml-cpp-dev exports the imported target `yaml-cpp` (no namespace).
coffer_cc_library(NAME coffer_agent_spc
  SRCS spc_yaml.cc spc.cc agent_config.cc
  DEPS coffer_common yaml-cpp)

coffer_cc_test(NAME agent_spc_test
  SRCS spc_test.cc
  DEPS coffer_agent_spc)
