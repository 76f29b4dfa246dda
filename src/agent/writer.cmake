# The node agent's atomic writer (kubelet AtomicWriter layout), apart from the
# rest of the agent so that it builds and tests on its own.
coffer_cc_library(NAME coffer_agent_writer
  SRCS atomic_writer.cc owner_check.cc
  DEPS coffer_common)

coffer_cc_test(NAME agent_writer_test
  SRCS atomic_writer_test.cc
  DEPS coffer_agent_writer)
