#include "server/limit_shares.h"

#include <algorithm>
#include <map>

#include "common/json.h"

namespace coffer::server {
namespace {

struct Holding {
  int64_t share = 0;
  bool hungry = false;
};

// The document, read leniently: what does not have its shape is left out.
struct Doc {
  int64_t window = -1;
  std::map<std::string, int64_t> servers;
  std::vector<std::string> members;
  std::vector<std::string> next;
  std::map<std::string, std::map<std::string, Holding>> claims;
};

std::vector<std::string> Ids(const Json& j) {
  std::vector<std::string> out;
  if (j.is_array()) {
    for (const Json& id : j) {
      if (id.is_string()) {
        out.push_back(id.get<std::string>());
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Doc Parse(const std::optional<std::string>& stored) {
  Doc d;
  if (!stored) {
    return d;
  }
  std::optional<Json> j = ParseJson(*stored, 5);
  if (!j || !j->is_object()) {
    return d;
  }
  if (auto w = j->find("window"); w != j->end() && w->is_number_integer()) {
    d.window = w->get<int64_t>();
  }
  if (auto s = j->find("servers"); s != j->end() && s->is_object()) {
    for (const auto& [id, seen] : s->items()) {
      if (seen.is_number_integer()) {
        d.servers[id] = seen.get<int64_t>();
      }
    }
  }
  if (auto m = j->find("members"); m != j->end()) {
    d.members = Ids(*m);
  }
  if (auto n = j->find("next"); n != j->end()) {
    d.next = Ids(*n);
  }
  if (auto c = j->find("claims"); c != j->end() && c->is_object()) {
    for (const auto& [key, by] : c->items()) {
      if (!by.is_object()) {
        continue;
      }
      for (const auto& [id, h] : by.items()) {
        if (h.is_array() && h.size() == 2 && h[0].is_number_integer() && h[0].get<int64_t>() >= 0 &&
            h[1].is_number_integer()) {
          d.claims[key][id] = {h[0].get<int64_t>(), h[1].get<int64_t>() != 0};
        }
      }
    }
  }
  return d;
}

std::string Serialize(const Doc& d) {
  Json j = Json::object();
  j["window"] = d.window;
  j["servers"] = Json::object();
  for (const auto& [id, seen] : d.servers) {
    j["servers"][id] = seen;
  }
  j["members"] = d.members;
  j["next"] = d.next;
  j["claims"] = Json::object();
  for (const auto& [key, by] : d.claims) {
    Json b = Json::object();
    for (const auto& [id, h] : by) {
      b[id] = Json::array({h.share, h.hungry ? 1 : 0});
    }
    j["claims"][key] = std::move(b);
  }
  return ToJson(j);
}

bool Contains(const std::vector<std::string>& ids, const std::string& id) {
  return std::binary_search(ids.begin(), ids.end(), id);
}

// The split of `window` among `ids`; none named: every one of `live`
// servers, this one too (what the first server to write in it will name).
ShareSplit SplitOf(int64_t window, const std::vector<std::string>& ids, const std::string& self,
                   int live) {
  ShareSplit s;
  s.window = window;
  s.members = ids.empty() ? live : static_cast<int>(ids.size());
  s.member = ids.empty() || Contains(ids, self);
  return s;
}

// A heartbeat from a clock far ahead counts for no more than one from now.
bool Recent(int64_t seen, int64_t now_ms) {
  return seen > now_ms - kShareLiveMillis && seen < now_ms + kShareLiveMillis;
}

bool Live(const Doc& d, const std::string& id, int64_t now_ms) {
  auto it = d.servers.find(id);
  return it != d.servers.end() && Recent(it->second, now_ms);
}

std::vector<std::string> LiveOnly(const Doc& d, const std::vector<std::string>& ids,
                                  int64_t now_ms) {
  std::vector<std::string> out;
  for (const std::string& id : ids) {
    if (Live(d, id, now_ms)) {
      out.push_back(id);
    }
  }
  return out;
}

int LiveCount(const Doc& d, const std::string& self, int64_t now_ms) {
  int n = d.servers.count(self) ? 0 : 1;
  for (const auto& [id, seen] : d.servers) {
    n += (id == self || Recent(seen, now_ms)) ? 1 : 0;
  }
  return n;
}

// What the document says to `self` in its own window, the claims aside.
ShareView Describe(const Doc& d, const std::string& self, int64_t now_ms) {
  ShareView v;
  v.live = LiveCount(d, self, now_ms);
  v.now = SplitOf(d.window, d.members, self, v.live);
  v.next = SplitOf(d.window + 1, d.next, self, v.live);
  for (const auto& [key, by] : d.claims) {
    for (const auto& [id, h] : by) {
      if (id != self && h.hungry && Live(d, id, now_ms)) {
        v.wanted.insert(key);
        break;
      }
    }
  }
  return v;
}

}  // namespace

ShareView ReadShares(const std::optional<std::string>& stored, const std::string& self,
                     int64_t now_ms, int64_t window) {
  Doc d = Parse(stored);
  if (d.window == window) {
    return Describe(d, self, now_ms);
  }
  // The document is of another window: its claims say nothing about this
  // one. The first server to write in this window will split it among the
  // servers the window before named, when it was the one before, else among
  // the live servers; and the next among the live servers.
  ShareView v;
  v.live = LiveCount(d, self, now_ms);
  v.now = SplitOf(window,
                  d.window == window - 1 ? LiveOnly(d, d.next, now_ms) : std::vector<std::string>{},
                  self, v.live);
  v.next = SplitOf(window + 1, {}, self, v.live);
  return v;
}

std::string MergeShares(const std::optional<std::string>& stored, const std::string& self,
                        int64_t now_ms, int64_t window, const std::vector<ShareClaim>& claims,
                        ShareView* view) {
  Doc d = Parse(stored);
  d.servers[self] = now_ms;
  std::vector<std::string> live;
  for (auto it = d.servers.begin(); it != d.servers.end();) {
    if (!Recent(it->second, now_ms)) {
      it = d.servers.erase(it);
    } else {
      live.push_back(it->first);
      ++it;
    }
  }
  if (d.window < window) {
    // The window's members are those the last window named, if it was the
    // one before (they began it evenly split), else every live server.
    d.members = (d.window == window - 1 && !d.next.empty()) ? LiveOnly(d, d.next, now_ms) : live;
    if (d.members.empty()) {
      d.members = live;
    }
    d.next = live;
    d.claims.clear();
    d.window = window;
  } else if (d.window > window) {
    *view = Describe(d, self, now_ms);
    view->stale = true;
    view->granted.clear();
    view->exhausted.clear();
    for (const ShareClaim& c : claims) {
      view->granted.push_back(c.held);
      view->exhausted.push_back(false);
    }
    return Serialize(d);
  }
  for (auto& [key, by] : d.claims) {
    std::erase_if(by, [&](const auto& e) { return !Live(d, e.first, now_ms); });
  }
  std::erase_if(d.claims, [](const auto& e) { return e.second.empty(); });

  std::vector<int64_t> granted;
  std::vector<bool> exhausted;
  for (const ShareClaim& c : claims) {
    auto& by = d.claims[c.key];
    const int64_t even = c.budget / static_cast<int64_t>(std::max<size_t>(1, d.members.size()));
    // What the other live servers hold: their claim, else their even share.
    int64_t others = 0;
    int hungry = c.hungry ? 1 : 0;
    bool all_claimed = true;
    for (const std::string& id : live) {
      if (id == self) {
        continue;
      }
      auto h = by.find(id);
      if (h != by.end()) {
        others += h->second.share;
        hungry += h->second.hungry ? 1 : 0;
      } else if (Contains(d.members, id)) {
        others += even;
        all_claimed = false;
      }
    }
    int64_t share = c.held;
    const int64_t free = c.budget - others - c.held;
    if (c.hungry && free > 0) {
      share += std::max<int64_t>(1, free / hungry);
    }
    by[self] = {share, c.hungry};
    granted.push_back(share);
    exhausted.push_back(all_claimed && c.budget - others - share <= 0);
  }
  *view = Describe(d, self, now_ms);
  view->granted = std::move(granted);
  view->exhausted = std::move(exhausted);
  return Serialize(d);
}

std::string LeaveShares(const std::optional<std::string>& stored, const std::string& self) {
  Doc d = Parse(stored);
  d.servers.erase(self);
  for (auto& [key, by] : d.claims) {
    by.erase(self);
  }
  std::erase_if(d.claims, [](const auto& e) { return e.second.empty(); });
  return Serialize(d);
}

}  // namespace coffer::server
