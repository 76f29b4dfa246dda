#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include "authz/authorizer.h"
#include "http/message.h"
#include "http/router.h"
#include "mgmt/arm.h"

namespace coffer::mgmt {

// One request to the management plane, as a handler sees it: the request,
// its route's parameters, who made it and the linked checks of the request
// (LinkedCheck). The plane has authorized the route's action before a
// handler runs.
struct ArmCall {
  const http::Request& request;
  const http::PathParams& params;
  const authz::Principal& caller;
  const LinkedCheck& linked;
};

// ArmRoute is one row of the management plane's route table: the method
// and path pattern (http::RouteTable; literals match ignoring case), the
// action Azure names it by (authz::ArmOperationOf gives the same for the
// path; a test walks the table to check), whether it reads a collection
// (a caller who may not read it whole sees the items it may read), and its
// handler.
struct ArmRoute {
  std::string_view method;
  std::string_view pattern;
  std::string_view action;
  bool collection = false;
  std::function<http::Response(const ArmCall&)> handle;
};

}  // namespace coffer::mgmt
