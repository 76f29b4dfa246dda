# Official-SDK conformance tests: the unmodified Azure SDKs (JS and Python) -- Key Vault secrets,
# keys and certificates,
# identity credentials (client secret and certificate, managed identity in App Service and IMDS
# mode, workload identity, DefaultAzureCredential) and the ARM clients -- against a real
# `coffer server --dev` process (and `coffer agent --imds`).  Included from tests/CMakeLists.txt.
#
#   ctest -L sdk --output-on-failure
#
# sdk_js   Node 20 test runner + @azure/keyvault-secrets 4.11.2, @azure/keyvault-keys 4.10.2,
#          @azure/keyvault-certificates 4.10.3, @azure/arm-keyvault 5.0.0,
#          @azure/arm-msi 2.2.0, @azure/arm-authorization 9.0.0, @azure/identity 4.13.1 and
#          @azure/logger 1.3.0
#          (pinned in sdk-js/package-lock.json; sdk_js_deps runs `npm ci` when they are missing).
# sdk_py   Debian's /usr/bin/python3 with the python3-azure package (azure-keyvault-secrets 4.7.0b1,
#          azure-keyvault-keys 4.8.0b3, azure-keyvault-certificates 4.7.0b1,
#          azure-identity 1.13.0b2).  The pyenv python3 on PATH has no azure packages.  Its server
#          comes from tests/integration/harness.py, the launcher the integration suites use.

set(COFFER_SDK_JS_DIR ${CMAKE_CURRENT_SOURCE_DIR}/sdk-js)
set(COFFER_SDK_PY_DIR ${CMAKE_CURRENT_SOURCE_DIR}/sdk-py)

find_program(COFFER_NODE node)
find_program(COFFER_NPM npm)
if(COFFER_NODE AND COFFER_NPM)
  # Installs the pinned npm packages unless they are already there.
  add_test(NAME sdk_js_deps
    COMMAND sh -c "test -f node_modules/@azure/keyvault-secrets/package.json -a -f node_modules/@azure/keyvault-keys/package.json -a -f node_modules/@azure/keyvault-certificates/package.json -a -f node_modules/@azure/identity/package.json -a -f node_modules/@azure/arm-keyvault/package.json -a -f node_modules/@azure/arm-msi/package.json -a -f node_modules/@azure/arm-authorization/package.json || '${COFFER_NPM}' ci --no-audit --no-fund"
    WORKING_DIRECTORY ${COFFER_SDK_JS_DIR})
  set_tests_properties(sdk_js_deps PROPERTIES
    FIXTURES_SETUP sdk_js_deps
    LABELS sdk
    TIMEOUT 300)

  # Explicit files rather than a directory: Node 20 searches a directory argument, later
  # versions treat arguments as glob patterns.
  file(GLOB COFFER_SDK_JS_TESTS CONFIGURE_DEPENDS ${COFFER_SDK_JS_DIR}/*.test.mjs)
  add_test(NAME sdk_js
    COMMAND ${COFFER_NODE} --test --test-reporter=spec ${COFFER_SDK_JS_TESTS}
    WORKING_DIRECTORY ${COFFER_SDK_JS_DIR})
  set_tests_properties(sdk_js PROPERTIES
    ENVIRONMENT "COFFER_BIN=$<TARGET_FILE:coffer>"
    FIXTURES_REQUIRED sdk_js_deps
    LABELS sdk
    TIMEOUT 600)
else()
  message(WARNING "node/npm not found: the sdk_js conformance test is not registered")
endif()

# run_suite.py (tests/integration) reports skips as the integration suites do.
add_test(NAME sdk_py
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/run_suite.py
          --discover ${COFFER_SDK_PY_DIR}
  WORKING_DIRECTORY ${COFFER_SDK_PY_DIR})
set_tests_properties(sdk_py PROPERTIES
  ENVIRONMENT "COFFER_BIN=$<TARGET_FILE:coffer>;PYTHONDONTWRITEBYTECODE=1"
  SKIP_RETURN_CODE 77
  LABELS sdk
  TIMEOUT 600)
