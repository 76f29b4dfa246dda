// How this server agrees on its share of the installation's service limits
// with the other servers of the installation (limit_shares.h).

#include <chrono>

#include "common/log.h"
#include "server/server.h"

namespace coffer::server {
namespace {

// How often the shares are looked at (ServiceLimits::Sync).
constexpr auto kShareTick = std::chrono::milliseconds(500);

}  // namespace

void CofferServer::ShareLoop() {
  std::unique_lock<std::mutex> lock(purge_mu_);
  while (!stopping_) {
    lock.unlock();
    SyncShares();
    lock.lock();
    purge_cv_.wait_for(lock, kShareTick, [this] { return stopping_; });
  }
  lock.unlock();
  // Its shares go back to the others now rather than when its heartbeat ages.
  Status left = service_limits_->Leave(*store_, server_id_);
  if (!left.ok()) {
    COFFER_LOG(kWarning) << "leaving the service limits' shares failed: " << left.ToString();
  }
}

void CofferServer::SyncShares() {
  Status synced = service_limits_->Sync(*store_, server_id_, shares_written_ms_);
  // Said once when it begins to fail and once when it works again, not
  // every half second while the store is away.
  if (!synced.ok() && !shares_failing_) {
    COFFER_LOG(kWarning) << "agreeing on the service limits' shares failed: " << synced.ToString();
  } else if (synced.ok() && shares_failing_) {
    COFFER_LOG(kInfo) << "agreeing on the service limits' shares works again";
  }
  shares_failing_ = !synced.ok();
}

}  // namespace coffer::server
