#include "auth/sign_in_pages.h"

#include "auth/oauth.h"
#include "auth/user_grants.h"
#include "common/log.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "http/client_address.h"

namespace coffer::auth {
namespace {

http::Response Page(int status, const std::string& title, const std::string& body) {
  http::Response r;
  r.status = status;
  r.body = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + title +
           " - Coffer</title></head>\n<body><main><h1>" + title + "</h1>\n" + body +
           "</main></body></html>\n";
  r.SetHeader("Content-Type", "text/html; charset=utf-8");
  // SECURITY: nothing runs and nothing loads; forms post only here; no
  // other site may frame the page (clickjacking) or keep a copy of it.
  r.SetHeader("Content-Security-Policy",
              "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  r.SetHeader("X-Frame-Options", "DENY");
  r.SetHeader("X-Content-Type-Options", "nosniff");
  r.SetHeader("Referrer-Policy", "no-referrer");
  r.SetHeader("Cache-Control", "no-store");
  return r;
}

std::string CodeForm(const std::string& error) {
  std::string out;
  if (!error.empty()) {
    out += "<p role=\"alert\" id=\"error\">" + error + "</p>\n";
  }
  out +=
      "<p>Enter the code shown on your device or in your terminal.</p>\n"
      "<form method=\"post\" action=\"/devicelogin\">\n"
      "<label for=\"code\">Code</label>\n"
      "<input id=\"code\" name=\"code\" autocomplete=\"off\" autofocus required "
      "maxlength=\"16\"" +
      std::string(error.empty() ? "" : " aria-describedby=\"error\"") +
      ">\n<button type=\"submit\">Next</button>\n</form>\n";
  return out;
}

std::string Hidden(const std::string& name, const std::string& value) {
  return "<input type=\"hidden\" name=\"" + name + "\" value=\"" +
         DeviceLoginPages::HtmlEscape(value) + "\">\n";
}

std::string SignInForm(const DeviceFlow& flow, const std::string& code, const std::string& login,
                       const std::string& error, bool new_password) {
  const PublicClient* client = FindPublicClient(flow.client_id);
  std::string app = client != nullptr ? client->name : flow.client_id;
  std::string out;
  if (!error.empty()) {
    out += "<p role=\"alert\" id=\"error\">" + error + "</p>\n";
  }
  out += "<p>You are signing in to <strong>" + DeviceLoginPages::HtmlEscape(app) +
         "</strong>, which will act as you on <strong>" +
         DeviceLoginPages::HtmlEscape(flow.resource) +
         "</strong>. Continue only if you started this sign-in yourself.</p>\n"
         "<form method=\"post\" action=\"/devicelogin\">\n" +
         Hidden("code", code) +
         "<label for=\"login\">Email, phone, or user name</label>\n"
         "<input id=\"login\" name=\"login\" autocomplete=\"username\" required value=\"" +
         DeviceLoginPages::HtmlEscape(login) +
         "\">\n"
         "<label for=\"passwd\">Password</label>\n"
         "<input id=\"passwd\" name=\"passwd\" type=\"password\" "
         "autocomplete=\"current-password\" required>\n";
  if (new_password) {
    out +=
        "<label for=\"newpasswd\">New password</label>\n"
        "<input id=\"newpasswd\" name=\"newpasswd\" type=\"password\" "
        "autocomplete=\"new-password\" required>\n";
  }
  out +=
      "<button type=\"submit\" name=\"action\" value=\"continue\">Continue</button>\n"
      "<button type=\"submit\" name=\"action\" value=\"cancel\" formnovalidate>Cancel</button>\n"
      "</form>\n";
  return out;
}

}  // namespace

DeviceLoginPages::DeviceLoginPages(Users& users, DeviceFlows& flows, const Clock& clock)
    : users_(users), flows_(flows), clock_(clock), code_failures_(clock, {10, 6}, 16384) {}

std::string DeviceLoginPages::HtmlEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

http::Response DeviceLoginPages::Handle(const http::Request& request) {
  if (request.method == "GET") {
    return Page(200, "Enter code", CodeForm(""));
  }
  if (request.method != "POST") {
    http::Response r = Page(405, "Method not allowed", "<p>Use GET or POST.</p>");
    r.SetHeader("Allow", "GET, POST");
    return r;
  }
  // SECURITY: a form posted from another site is refused (login CSRF).
  // Browsers send Origin with every POST; clients without one (scripts)
  // cannot be led by another site.
  std::string_view origin = request.Header("origin");
  if (!origin.empty() && origin != "https://" + request.host) {
    return Page(403, "Forbidden", "<p>This form may only be sent from its own page.</p>");
  }
  if (request.body.size() > kMaxFormBytes) {
    return Page(413, "Too large", "<p>The form is too large.</p>");
  }
  return Post(request);
}

http::Response DeviceLoginPages::Post(const http::Request& request) {
  auto form = ParseForm(request.body);
  if (!form.ok()) {
    return Page(400, "Enter code", CodeForm("The form could not be read."));
  }
  std::string address = http::ClientAddressKey(request.remote_address);
  std::string code = FormField(*form, "code");
  if (int64_t wait = code_failures_.RetryAfter(address); wait > 0) {
    http::Response r = Page(
        429, "Too many attempts",
        "<p>Too many codes were wrong. Try again in " + std::to_string(wait) + " seconds.</p>");
    r.SetHeader("Retry-After", std::to_string(wait));
    return r;
  }
  auto flow = flows_.Find(code);
  if (!flow.ok()) {
    if (flow.status().code() != StatusCode::kNotFound) {
      return Page(503, "Unavailable", "<p>Sign-in is unavailable; try again shortly.</p>");
    }
    code_failures_.RecordFailure(address);
    return Page(400, "Enter code",
                CodeForm("That code was not recognized, or it has expired. Check it and try "
                         "again."));
  }
  std::string login = FormField(*form, "login");
  if (login.empty() && !form->count("action")) {
    return Page(200, "Sign in", SignInForm(*flow, code, "", "", false));
  }
  if (FormField(*form, "action") == "cancel") {
    Status declined = flows_.Decide(code, false, "", 0);
    if (!declined.ok() && declined.code() != StatusCode::kNotFound) {
      return Page(503, "Unavailable", "<p>Sign-in is unavailable; try again shortly.</p>");
    }
    return Page(200, "Sign-in cancelled",
                "<p>You declined the sign-in. You may close this window.</p>");
  }
  std::string password = FormField(*form, "passwd");
  std::string replacement = FormField(*form, "newpasswd");
  struct Wipe {
    std::string& a;
    std::string& b;
    ~Wipe() {
      crypto::SecureWipe(a);
      crypto::SecureWipe(b);
    }
  } wipe{password, replacement};
  auto checked = users_.SignIn(login, password, address);
  if (!checked.ok()) {
    return Page(503, "Unavailable", "<p>Sign-in is unavailable; try again shortly.</p>");
  }
  auto again = [&](int status, const std::string& error, bool new_password) {
    return Page(status, "Sign in", SignInForm(*flow, code, login, error, new_password));
  };
  switch (checked->failure) {
    case SignInFailure::kNone:
      break;
    case SignInFailure::kBadCredentials:
      return again(400, "Your account or password is incorrect. (AADSTS50126)", false);
    case SignInFailure::kLocked:
      return again(400,
                   "Your account is locked because of too many failed sign-ins. Try again in " +
                       std::to_string(checked->retry_after) + " seconds. (AADSTS50053)",
                   false);
    case SignInFailure::kDisabled:
      return again(400, "Your account has been disabled. (AADSTS50057)", false);
    case SignInFailure::kThrottled:
    case SignInFailure::kBusy: {
      http::Response r = again(429, "Too many sign-ins; try again in a few seconds.", false);
      r.SetHeader("Retry-After", std::to_string(std::max<int64_t>(1, checked->retry_after)));
      return r;
    }
  }
  storage::UserRecord user = checked->user;
  if (checked->must_change) {
    if (replacement.empty()) {
      return again(200, "You must choose a new password before you continue.", true);
    }
    auto changed = users_.ChangePassword(user.object_id, password, replacement, address);
    if (!changed.ok()) {
      if (changed.status().code() == StatusCode::kInvalidArgument) {
        return again(400, HtmlEscape(changed.status().message()), true);
      }
      return Page(503, "Unavailable", "<p>Sign-in is unavailable; try again shortly.</p>");
    }
    if (changed->failure != SignInFailure::kNone) {
      return again(400, "Your account or password is incorrect. (AADSTS50126)", true);
    }
    user = changed->user;
  }
  Status approved =
      flows_.Decide(code, true, user.object_id, clock_.NowSeconds(), user.sessions_valid_from);
  if (!approved.ok()) {
    if (approved.code() == StatusCode::kNotFound) {
      return Page(400, "Enter code", CodeForm("That code has expired or was already used."));
    }
    return Page(503, "Unavailable", "<p>Sign-in is unavailable; try again shortly.</p>");
  }
  COFFER_LOG(kInfo) << "device sign-in approved for user " << user.object_id;
  return Page(200, "Signed in",
              "<p>You have signed in as " + HtmlEscape(user.user_principal_name) +
                  ". You may close this window and return to your device.</p>");
}

}  // namespace coffer::auth
