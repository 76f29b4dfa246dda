// The sanitizer build's defaults (COFFER_SANITIZE), linked into every
// executable; ASAN_OPTIONS still overrides them.

#if defined(__SANITIZE_ADDRESS__)

// GCC 12's LeakSanitizer guesses where a dlopen'ed module's TLS block begins
// and ends from a header that glibc stopped writing in 2.19: a block whose
// address is 16 past a page boundary is read as having one, and the garbage
// bounds crash its tracer at exit ("Tracer caught signal 11"). Whether a
// block lands there depends only on how many allocations came before it, so
// any change could make `coffer` crash after resolving a *.localhost name
// (libnss_myhostname has TLS). Newer sanitizers ask their allocator instead
// (LLVM's sanitizer_tls_get_addr.cpp, __sanitizer_get_dtls_size). Without
// the interception LSan still scans every thread's static TLS and the heap;
// what only a loaded module's TLS points to would be reported, never hidden.
// docs/development.md has the reproduction.
extern "C" const char* __asan_default_options() {
  return "intercept_tls_get_addr=0";
}

#endif
