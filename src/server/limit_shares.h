#pragma once

// How the servers of one installation split its service limits
// (docs/service-limits.md, "Several servers"). Each budget -- a vault's
// transactions of one class in a 10-second window, or the installation's --
// is the installation's, not each server's: every server admits requests
// up to a share of it, and the shares add up to at most the budget.
//
// The servers agree through one document in the store's meta, changed only
// by compare-and-set (Store::UpdateMeta):
//
//   {"window": W,                          the window the claims are for
//    "servers": {"<id>": <unix ms>, ...},  heartbeats; live for 15 s
//    "members": ["<id>", ...],             who splits window W evenly
//    "next": ["<id>", ...],                who will split window W + 1
//    "claims": {"<key>": {"<id>": [share, hungry], ...}, ...}}
//
// A window starts split evenly among its members (a server that joined
// later starts with nothing). A server whose requests were refused for want
// of share is hungry: it claims what no one holds, shared among the hungry.
// A server that sees another hungry lowers its own share first to what it
// used plus a reserve, then writes the lower share, so that what it holds
// never exceeds what the document says it holds, and the document's shares
// never add up to more than the budget. A server whose heartbeat stopped
// holds nothing.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace coffer::server {

// The store's meta key of the document.
inline constexpr char kLimitSharesMetaKey[] = "service_limit_shares";
// A server is live while its last heartbeat is younger than this.
inline constexpr int64_t kShareLiveMillis = 15'000;

// How a window's budgets are divided before any claim.
struct ShareSplit {
  int64_t window = -1;
  int members = 1;     // the servers that split it evenly
  bool member = true;  // this server is one of them
};

// One budget a server tells the others about.
struct ShareClaim {
  std::string key;      // "<vault>/<class>", or "*/<class>" for the installation's
  int64_t budget = 0;   // the installation's, per window
  int64_t held = 0;     // this server's share now (already lowered when it spares some)
  bool hungry = false;  // requests were refused for want of share since it last said
};

// What a server learns from the document.
struct ShareView {
  ShareSplit now;   // the split of the document's window
  ShareSplit next;  // the split of the window after it
  int live = 1;     // live servers, this one included
  // Keys of the window on which another live server is hungry.
  std::set<std::string> wanted;
  // Per claim: the share this server now holds, and whether nothing is left
  // to claim (every other live server has claimed or spared its share).
  std::vector<int64_t> granted;
  std::vector<bool> exhausted;
  // The document is already in a later window than the server's clock: its
  // claims were not written.
  bool stale = false;
};

// ReadShares is what `stored` (the document, nullopt when none) says to
// server `self` at `now_ms`, in window `window`, without changing it.
// A document that cannot be read says nothing (every server alone).
ShareView ReadShares(const std::optional<std::string>& stored, const std::string& self,
                     int64_t now_ms, int64_t window);

// MergeShares returns the document with self's heartbeat and `claims`
// (for window `window`), and sets `view` to what it says. A document of an
// earlier window is rolled to `window` (its claims dropped); dead servers'
// heartbeats and claims are dropped; a document that cannot be read is
// started anew.
std::string MergeShares(const std::optional<std::string>& stored, const std::string& self,
                        int64_t now_ms, int64_t window, const std::vector<ShareClaim>& claims,
                        ShareView* view);

// LeaveShares returns the document without `self`: a server that stops
// gives its shares back at once.
std::string LeaveShares(const std::optional<std::string>& stored, const std::string& self);

}  // namespace coffer::server
