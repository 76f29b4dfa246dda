// Compiles the separately-compiled parts of Boost.Asio and Boost.Beast once
// for the whole project (BOOST_*_SEPARATE_COMPILATION are PUBLIC
// definitions of coffer_boost).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
