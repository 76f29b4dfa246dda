#include "agent/atomic_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/testing/temp_dir.h"

#include <sys/resource.h>
#include <sys/stat.h>

namespace coffer::agent {
namespace {

constexpr int64_t kApril30 = 1777544102;  // 2026-04-30T10:15:02Z

// IsTimestampDirName: "..YYYY_MM_DD_HH_MM_SS." and a decimal suffix, as Go's
// os.MkdirTemp makes it for kubelet. (std::regex trips GCC 12 warnings.)
bool IsTimestampDirName(const std::string& name) {
  const std::string shape = "..9999_99_99_99_99_99.";
  if (name.size() <= shape.size()) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    bool digit = name[i] >= '0' && name[i] <= '9';
    if (i < shape.size() ? (shape[i] == '9' ? !digit : name[i] != shape[i]) : !digit) {
      return false;
    }
  }
  return true;
}

using Files = std::map<std::string, std::string>;

std::string ReadLinkOf(const std::string& path) {
  char buf[4097];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
  return n < 0 ? "<not a link: " + std::string(std::strerror(errno)) + ">"
               : std::string(buf, static_cast<size_t>(n));
}

struct stat Lstat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st;
}

mode_t ModeOf(const std::string& path) {
  return Lstat(path).st_mode & 07777;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return names;
  }
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") {
      names.push_back(n);
    }
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// Describe lists everything below `root` (not root itself): type, mode,
// owner, inode, contents or link, and with `times` the mtime. Two equal
// descriptions mean nothing below root was touched.
void DescribeInto(const std::string& root, const std::string& rel, bool times, std::string* out) {
  for (const std::string& name : Names(rel.empty() ? root : root + "/" + rel)) {
    std::string r = rel.empty() ? name : rel + "/" + name;
    std::string full = root + "/" + r;
    struct stat st = Lstat(full);
    std::ostringstream line;
    line << r << " mode=" << std::oct << (st.st_mode & 0177777) << std::dec << " uid=" << st.st_uid
         << " gid=" << st.st_gid << " ino=" << st.st_ino;
    if (times) {
      line << " mtime=" << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec;
    }
    if (S_ISLNK(st.st_mode)) {
      line << " -> " << ReadLinkOf(full);
    } else if (S_ISREG(st.st_mode)) {
      line << " data=" << Slurp(full);
    }
    *out += line.str() + "\n";
    if (S_ISDIR(st.st_mode)) {
      DescribeInto(root, r, times, out);
    }
  }
}

std::string Describe(const std::string& root, bool times = true) {
  std::string out;
  DescribeInto(root, "", times, &out);
  return out;
}

std::vector<PayloadFile> Payload(const Files& files, uint32_t mode = 0644) {
  std::vector<PayloadFile> out;
  for (const auto& [path, contents] : files) {
    out.push_back({path, contents, mode});
  }
  return out;
}

class AtomicWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = test::TempDir::Create("coffer-writer-test-");
    ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
    tmp_ = std::move(*tmp);
    dir_ = tmp_.path();
    target_ = dir_ + "/mount";
    outside_ = dir_ + "/elsewhere";
    ASSERT_EQ(::mkdir(target_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(outside_.c_str(), 0755), 0);
    Spit(outside_ + "/a", "outside");
    ASSERT_EQ(::mkdir((outside_ + "/d").c_str(), 0755), 0);
    opts_.clock = &clock_;
    old_umask_ = ::umask(022);
  }
  void TearDown() override { ::umask(old_umask_); }

  // Write is WritePayload that must succeed.
  WriteResult Write(const std::vector<PayloadFile>& files) {
    auto r = WritePayload(target_, files, opts_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) {
      return {};
    }
    EXPECT_TRUE(r->cleanup_status.ok()) << r->cleanup_status.ToString();
    return *r;
  }

  Files Read() {
    auto r = ReadPayload(target_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : Files{};
  }

  std::string DataDir() { return ReadLinkOf(target_ + "/..data"); }

  std::vector<std::string> TimestampDirs() {
    std::vector<std::string> out;
    for (const std::string& n : Names(target_)) {
      if (IsTimestampDirName(n)) {
        out.push_back(n);
      }
    }
    return out;
  }

  test::TempDir tmp_;
  std::string dir_;
  std::string target_;
  std::string outside_;
  FakeClock clock_{kApril30};
  WriteOptions opts_;
  mode_t old_umask_ = 022;
};

TEST_F(AtomicWriterTest, LayoutIsKubeletsAtomicWriter) {
  WriteResult r =
      Write({{"db-pass", "p4ss", 0644}, {"tls/0", "cert", 0600}, {"tls/1", "key", 0400}});
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.changed_paths, (std::vector<std::string>{"db-pass", "tls/0", "tls/1"}));

  std::string ts = DataDir();
  EXPECT_TRUE(IsTimestampDirName(ts)) << ts;
  EXPECT_EQ(ts.rfind("..2026_04_30_10_15_02.", 0), 0u) << ts;
  EXPECT_EQ(Names(target_), (std::vector<std::string>{ts, "..data", "db-pass", "tls"}));
  EXPECT_EQ(ReadLinkOf(target_ + "/db-pass"), "..data/db-pass");
  EXPECT_EQ(ReadLinkOf(target_ + "/tls"), "..data/tls");
  EXPECT_TRUE(S_ISLNK(Lstat(target_ + "/..data").st_mode));
  EXPECT_TRUE(S_ISDIR(Lstat(target_ + "/" + ts).st_mode));
  EXPECT_EQ(ModeOf(target_ + "/" + ts), 0755u);
  EXPECT_EQ(ModeOf(target_ + "/" + ts + "/tls"), 0755u);
  EXPECT_EQ(ModeOf(target_ + "/" + ts + "/db-pass"), 0644u);
  EXPECT_EQ(ModeOf(target_ + "/" + ts + "/tls/0"), 0600u);
  EXPECT_EQ(ModeOf(target_ + "/" + ts + "/tls/1"), 0400u);
  EXPECT_EQ(Names(target_ + "/" + ts), (std::vector<std::string>{"db-pass", "tls"}));
  EXPECT_EQ(Slurp(target_ + "/db-pass"), "p4ss");
  EXPECT_EQ(Slurp(target_ + "/tls/0"), "cert");
  EXPECT_EQ(ModeOf(target_), 0755u);  // an existing target keeps its mode
}

class UmaskTest : public AtomicWriterTest, public ::testing::WithParamInterface<mode_t> {};

TEST_P(UmaskTest, ModesAreExactWhateverTheUmask) {
  ::umask(GetParam());
  std::string fresh = dir_ + "/fresh";
  auto r = WritePayload(
      fresh, {{"a", "1", 0644}, {"x/y/z", "2", 0755}, {"w", "3", 0666}, {"n", "4", 0}}, opts_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string ts = fresh + "/" + ReadLinkOf(fresh + "/..data");
  EXPECT_EQ(ModeOf(fresh), 0750u);
  EXPECT_EQ(ModeOf(ts), 0755u);
  EXPECT_EQ(ModeOf(ts + "/x"), 0755u);
  EXPECT_EQ(ModeOf(ts + "/x/y"), 0755u);
  EXPECT_EQ(ModeOf(ts + "/a"), 0644u);
  EXPECT_EQ(ModeOf(ts + "/x/y/z"), 0755u);
  EXPECT_EQ(ModeOf(ts + "/w"), 0666u);
  EXPECT_EQ(ModeOf(ts + "/n"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Umasks, UmaskTest, ::testing::Values(0, 022, 077));

TEST_F(AtomicWriterTest, NestedPathsAndReadBack) {
  Files files = {{"a", "A"},   {"d/e/f", "F"},   {"d/e/g", ""},
                 {"d/h", "H"}, {".hidden", "x"}, {"a..b/c", "C"}};
  Write(Payload(files));
  EXPECT_EQ(Read(), files);
  EXPECT_EQ(ReadLinkOf(target_ + "/d"), "..data/d");
  EXPECT_EQ(Slurp(target_ + "/d/e/f"), "F");
  EXPECT_FALSE(Exists(target_ + "/e"));
}

TEST_F(AtomicWriterTest, UnchangedPayloadWritesNothing) {
  Write({{"a", "1", 0644}, {"d/b", "2", 0600}});
  std::string before = Describe(target_);
  struct stat target_before = Lstat(target_);
  struct stat data_before = Lstat(target_ + "/..data");
  clock_.Advance(3600);  // a write now would make a differently named dir
  ::usleep(20'000);      // and a different mtime

  auto r = WritePayload(target_, {{"d/b", "2", 0600}, {"a", "1", 0644}}, opts_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->changed);
  EXPECT_TRUE(r->changed_paths.empty());
  EXPECT_EQ(Describe(target_), before);
  struct stat target_after = Lstat(target_);
  struct stat data_after = Lstat(target_ + "/..data");
  EXPECT_EQ(data_after.st_ino, data_before.st_ino);
  EXPECT_EQ(data_after.st_mtim.tv_nsec, data_before.st_mtim.tv_nsec);
  EXPECT_EQ(data_after.st_mtim.tv_sec, data_before.st_mtim.tv_sec);
  EXPECT_EQ(target_after.st_mtim.tv_sec, target_before.st_mtim.tv_sec);
  EXPECT_EQ(target_after.st_mtim.tv_nsec, target_before.st_mtim.tv_nsec);
}

TEST_F(AtomicWriterTest, ModeOnlyChangeWrites) {
  Write({{"a", "1", 0644}, {"b", "2", 0644}});
  std::string old_ts = DataDir();
  WriteResult r = Write({{"a", "1", 0600}, {"b", "2", 0644}});
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.changed_paths, std::vector<std::string>{"a"});
  EXPECT_NE(DataDir(), old_ts);
  EXPECT_EQ(ModeOf(target_ + "/a"), 0777u);  // the link itself
  EXPECT_EQ(ModeOf(target_ + "/" + DataDir() + "/a"), 0600u);
  EXPECT_FALSE(Exists(target_ + "/" + old_ts));
}

TEST_F(AtomicWriterTest, ContentChangeSwitchesAndRemovesTheOldTimestampDir) {
  Write({{"a", "1"}, {"b", "2"}});
  std::string old_ts = DataDir();
  clock_.Advance(61);
  WriteResult r = Write({{"a", "1"}, {"b", "3"}});
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.changed_paths, std::vector<std::string>{"b"});
  EXPECT_EQ(DataDir().rfind("..2026_04_30_10_16_03.", 0), 0u) << DataDir();
  EXPECT_EQ(TimestampDirs(), std::vector<std::string>{DataDir()});
  EXPECT_FALSE(Exists(target_ + "/" + old_ts));
  EXPECT_EQ(Read(), (Files{{"a", "1"}, {"b", "3"}}));
}

TEST_F(AtomicWriterTest, VanishedFilesLoseTheirLinks) {
  Write(Payload({{"a", "1"}, {"b", "2"}, {"d/x", "3"}, {"d/y", "4"}, {"e/z", "5"}}));
  WriteResult r = Write(Payload({{"a", "1"}, {"d/x", "3"}}));
  EXPECT_EQ(r.changed_paths, (std::vector<std::string>{"b", "d/y", "e/z"}));
  EXPECT_EQ(Names(target_), (std::vector<std::string>{DataDir(), "..data", "a", "d"}));
  EXPECT_EQ(Read(), (Files{{"a", "1"}, {"d/x", "3"}}));
}

TEST_F(AtomicWriterTest, FileBecomingDirectoryAndBack) {
  Write(Payload({{"t", "file"}}));
  WriteResult r = Write(Payload({{"t/0", "nested"}}));
  EXPECT_EQ(r.changed_paths, (std::vector<std::string>{"t", "t/0"}));
  EXPECT_EQ(Read(), (Files{{"t/0", "nested"}}));
  Write(Payload({{"t", "file again"}}));
  EXPECT_EQ(Read(), (Files{{"t", "file again"}}));
}

TEST_F(AtomicWriterTest, EmptyPayload) {
  WriteResult first = Write({});
  EXPECT_TRUE(first.changed);
  EXPECT_TRUE(first.changed_paths.empty());
  EXPECT_TRUE(IsTimestampDirName(DataDir()));
  EXPECT_TRUE(Names(target_ + "/" + DataDir()).empty());
  EXPECT_FALSE(Write({}).changed);

  Write(Payload({{"a", "1"}}));
  WriteResult emptied = Write({});
  EXPECT_EQ(emptied.changed_paths, std::vector<std::string>{"a"});
  EXPECT_EQ(Names(target_), (std::vector<std::string>{DataDir(), "..data"}));
  EXPECT_TRUE(Read().empty());
}

TEST(ValidatePayloadPathTest, DriverRules) {
  for (std::string good : {"a", "a/b", ".hidden", "a..b", "a/..b", "a/.b", "x/y/z", "a.", "..."}) {
    if (good == "...") {
      continue;  // handled below: first element may not start with ".."
    }
    EXPECT_TRUE(ValidatePayloadPath(good).ok()) << good;
  }
  EXPECT_TRUE(ValidatePayloadPath(std::string(255, 'x')).ok());
  // 17 elements of 240 bytes and 16 slashes: exactly 4096.
  std::string longest;
  for (int i = 0; i < 17; ++i) {
    longest += (i ? "/" : "") + std::string(240, 'a' + i);
  }
  ASSERT_EQ(longest.size(), 4096u);
  EXPECT_TRUE(ValidatePayloadPath(longest).ok());

  std::vector<std::string> bad = {"",
                                  "/abs",
                                  "..",
                                  "../x",
                                  "a/../b",
                                  "a/..",
                                  "a//b",
                                  "a/",
                                  "./a",
                                  "a/./b",
                                  ".",
                                  "...",
                                  "..data",
                                  "..data/x",
                                  "..2026_04_30_10_15_02.1/x",
                                  std::string(256, 'x'),
                                  "a/" + std::string(256, 'x'),
                                  longest + "b",
                                  std::string("a\0b", 3)};
  for (const std::string& path : bad) {
    Status s = ValidatePayloadPath(path);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << path.substr(0, 40);
  }
  EXPECT_NE(ValidatePayloadPath(std::string("a\0b", 3)).message().find("NUL"), std::string::npos);
}

TEST_F(AtomicWriterTest, InvalidPayloadsWriteNothing) {
  Write(Payload({{"a", "old"}}));
  std::string before = Describe(target_);
  std::vector<std::vector<PayloadFile>> bad = {
      {{"ok", "1"}, {"/abs", "2"}},
      {{"ok", "1"}, {"../escape", "2"}},
      {{"ok", "1"}, {"a//b", "2"}},
      {{"ok", "1"}, {"a/", "2"}},
      {{"ok", "1"}, {"./a", "2"}},
      {{"ok", "1"}, {"", "2"}},
      {{"ok", "1"}, {std::string(256, 'x'), "2"}},
      {{"ok", "1"}, {std::string(4097, 'x'), "2"}},
      {{"ok", "1"}, {std::string("n\0ul", 4), "2"}},
      {{"ok", "1"}, {"..data", "2"}},
      {{"ok", "1"}, {"ok", "dup"}},
      {{"d", "1"}, {"d/e", "2"}},
      {{"d/e/f", "1"}, {"d/e", "2"}},
      {{"ok", "1", 04755}},
      {{"ok", "1", 01644}},
      {{"ok", "1", 0100644}},
  };
  for (const auto& payload : bad) {
    auto r = WritePayload(target_, payload, opts_);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << payload.back().path.substr(0, 20);
    EXPECT_EQ(Describe(target_), before);
    auto fresh = WritePayload(dir_ + "/never", payload, opts_);
    EXPECT_FALSE(fresh.ok());
    EXPECT_FALSE(Exists(dir_ + "/never"));
  }
}

TEST_F(AtomicWriterTest, MissingParentIsNotFound) {
  auto r = WritePayload(dir_ + "/no/such/parent", Payload({{"a", "1"}}), opts_);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().ToString();
  EXPECT_FALSE(Exists(dir_ + "/no"));
}

// Fails the nth step of a write (0-based) with EIO, for every n a clean write
// has: before the switch the old payload must be exactly as it was; after it
// the new one is in place and the failure is in cleanup_status.
TEST_F(AtomicWriterTest, FailureAtEveryStepLeavesTheOldPayload) {
  std::vector<PayloadFile> v1 =
      Payload({{"a", "s3cr3t-1"}, {"b", "s3cr3t-1"}, {"d/x", "s3cr3t-1"}, {"keep", "same"}});
  Files v2 = {{"a", "s3cr3t-2"},
              {"d/x", "s3cr3t-2"},
              {"d/y", "s3cr3t-2"},
              {"e/f/g", "s3cr3t-2"},
              {"keep", "same"}};
  opts_.uid = 1234;
  opts_.gid = 5678;

  std::vector<std::string> steps;
  {
    std::string t = dir_ + "/count";
    ASSERT_TRUE(WritePayload(t, v1, opts_).ok());
    WriteOptions counting = opts_;
    counting.inject_fault = [&steps](std::string_view step) {
      steps.emplace_back(step);
      return 0;
    };
    ASSERT_TRUE(WritePayload(t, Payload(v2), counting).ok());
  }
  auto switch_at = std::find(steps.begin(), steps.end(), "rename ..data") - steps.begin();
  ASSERT_LT(static_cast<size_t>(switch_at), steps.size());
  ASSERT_GT(switch_at, 10);
  ASSERT_GT(steps.size(), static_cast<size_t>(switch_at) + 2);

  for (size_t n = 0; n < steps.size(); ++n) {
    SCOPED_TRACE("failing step " + std::to_string(n) + ": " + steps[n]);
    std::string t = dir_ + "/t" + std::to_string(n);
    ASSERT_TRUE(WritePayload(t, v1, opts_).ok());
    std::string before = Describe(t);
    WriteOptions failing = opts_;
    size_t count = 0;
    failing.inject_fault = [&count, n](std::string_view) { return count++ == n ? EIO : 0; };
    auto r = WritePayload(t, Payload(v2), failing);
    if (static_cast<ptrdiff_t>(n) <= switch_at) {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
      std::string message(r.status().message());
      EXPECT_NE(message.find(std::strerror(EIO)), std::string::npos) << message;
      EXPECT_NE(message.find(t), std::string::npos) << message;
      EXPECT_EQ(message.find("s3cr3t"), std::string::npos) << message;
      EXPECT_EQ(Describe(t), before);
    } else {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_FALSE(r->cleanup_status.ok());
      auto read = ReadPayload(t);
      ASSERT_TRUE(read.ok()) << read.status().ToString();
      EXPECT_EQ(*read, v2);
    }
  }
}

// A real failure, not an injected one: root ignores permission bits, but not
// RLIMIT_FSIZE, so a file over the limit fails with EFBIG mid-write.
TEST_F(AtomicWriterTest, RealWriteFailureLeavesTheOldPayload) {
  Write(Payload({{"a", "old-a"}, {"b", "old-b"}}));
  std::string before = Describe(target_);
  struct rlimit old_limit {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit = old_limit;
  limit.rlim_cur = 1 << 20;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  auto r =
      WritePayload(target_, Payload({{"a", "new-a"}, {"b", std::string(2 << 20, 'b')}}), opts_);
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  EXPECT_EQ(Describe(target_), before);
  EXPECT_EQ(Read(), (Files{{"a", "old-a"}, {"b", "old-b"}}));
}

TEST_F(AtomicWriterTest, HostileDataLinkOutsideIsNeitherReadNorWritten) {
  ASSERT_EQ(::symlink(outside_.c_str(), (target_ + "/..data").c_str()), 0);
  ASSERT_EQ(::symlink("..data/a", (target_ + "/a").c_str()), 0);
  std::string outside_before = Describe(outside_);
  // The same bytes as outside: still a write, since ..data is not ours.
  WriteResult r = Write(Payload({{"a", "outside"}, {"d/new", "x"}}));
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(Describe(outside_), outside_before);
  EXPECT_TRUE(IsTimestampDirName(DataDir())) << DataDir();
  EXPECT_EQ(Read(), (Files{{"a", "outside"}, {"d/new", "x"}}));
  EXPECT_TRUE(Exists(outside_ + "/a"));
}

TEST_F(AtomicWriterTest, HostileTimestampDirLinkIsNotRemovedThrough) {
  std::string fake = "..2020_01_01_00_00_00.1";
  ASSERT_EQ(::symlink(outside_.c_str(), (target_ + "/" + fake).c_str()), 0);
  ASSERT_EQ(::symlink(fake.c_str(), (target_ + "/..data").c_str()), 0);
  std::string outside_before = Describe(outside_);
  Write(Payload({{"a", "new"}}));
  Write(Payload({{"a", "newer"}}));
  EXPECT_EQ(Describe(outside_), outside_before);
  EXPECT_EQ(Read(), (Files{{"a", "newer"}}));
}

TEST_F(AtomicWriterTest, HostileTopLevelLinksAreReplacedNotFollowed) {
  ASSERT_EQ(::symlink((outside_ + "/a").c_str(), (target_ + "/a").c_str()), 0);
  ASSERT_EQ(::symlink((outside_ + "/d").c_str(), (target_ + "/d").c_str()), 0);
  ASSERT_EQ(::symlink(outside_.c_str(), (target_ + "/..data_tmp").c_str()), 0);
  std::string outside_before = Describe(outside_);
  auto before = ReadPayload(target_);
  EXPECT_EQ(before.status().code(), StatusCode::kFailedPrecondition);
  WriteResult r = Write(Payload({{"a", "new"}, {"d/x", "new"}}));
  EXPECT_EQ(Describe(outside_), outside_before);
  EXPECT_EQ(ReadLinkOf(target_ + "/a"), "..data/a");
  EXPECT_EQ(ReadLinkOf(target_ + "/d"), "..data/d");
  EXPECT_FALSE(Exists(target_ + "/..data_tmp"));
  EXPECT_EQ(Read(), (Files{{"a", "new"}, {"d/x", "new"}}));

  // A wrong link alone (bytes unchanged) is repaired.
  ASSERT_EQ(::unlink((target_ + "/a").c_str()), 0);
  ASSERT_EQ(::symlink((outside_ + "/a").c_str(), (target_ + "/a").c_str()), 0);
  EXPECT_TRUE(Write(Payload({{"a", "new"}, {"d/x", "new"}})).changed);
  EXPECT_EQ(ReadLinkOf(target_ + "/a"), "..data/a");
  EXPECT_EQ(Describe(outside_), outside_before);
}

TEST_F(AtomicWriterTest, LeftoversFromDirectWritesMakeWay) {
  Spit(target_ + "/a", "written directly");
  ASSERT_EQ(::mkdir((target_ + "/d").c_str(), 0700), 0);
  Spit(target_ + "/d/old", "old");
  ASSERT_EQ(::symlink(outside_.c_str(), (target_ + "/d/link").c_str()), 0);
  Spit(target_ + "/unrelated", "stays");
  std::string outside_before = Describe(outside_);
  Write(Payload({{"a", "new"}, {"d/x", "new"}}));
  EXPECT_EQ(ReadLinkOf(target_ + "/a"), "..data/a");
  EXPECT_EQ(ReadLinkOf(target_ + "/d"), "..data/d");
  EXPECT_EQ(Slurp(target_ + "/unrelated"), "stays");
  EXPECT_EQ(Describe(outside_), outside_before);
  EXPECT_EQ(Read(), (Files{{"a", "new"}, {"d/x", "new"}, {"unrelated", "stays"}}));
}

TEST_F(AtomicWriterTest, SpecialFilesAndDataDirectoryAreRefused) {
  ASSERT_EQ(::mkfifo((target_ + "/a").c_str(), 0644), 0);
  auto r = WritePayload(target_, Payload({{"a", "1"}}), opts_);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
  EXPECT_EQ(Names(target_), std::vector<std::string>{"a"});
  EXPECT_EQ(ReadPayload(target_).status().code(), StatusCode::kFailedPrecondition);

  ASSERT_EQ(::unlink((target_ + "/a").c_str()), 0);
  ASSERT_EQ(::mkdir((target_ + "/..data").c_str(), 0755), 0);
  r = WritePayload(target_, Payload({{"a", "1"}}), opts_);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
  EXPECT_EQ(Names(target_), std::vector<std::string>{"..data"});
}

TEST_F(AtomicWriterTest, StaleStateOfACrashedWriteIsCleanedUp) {
  Write(Payload({{"a", "1"}}));
  std::string stale = target_ + "/..2020_01_01_00_00_00.42";
  ASSERT_EQ(::mkdir(stale.c_str(), 0755), 0);
  Spit(stale + "/z", "old");
  ASSERT_EQ(::symlink("..data/z", (target_ + "/z").c_str()), 0);
  ASSERT_EQ(::symlink(stale.c_str(), (target_ + "/..data_tmp").c_str()), 0);
  EXPECT_EQ(Read(), (Files{{"a", "1"}}));  // the dangling link is no payload
  Write(Payload({{"a", "2"}}));
  EXPECT_EQ(Names(target_), (std::vector<std::string>{DataDir(), "..data", "a"}));
}

TEST_F(AtomicWriterTest, ReadPayload) {
  EXPECT_EQ(ReadPayload(dir_ + "/absent").status().code(), StatusCode::kNotFound);
  Files files = {
      {"a", std::string("bin\0ary", 7)}, {"d/e/f", "F"}, {"big", std::string(300000, 'z')}};
  Write(Payload(files));
  Spit(target_ + "/..ignored", "x");
  EXPECT_EQ(Read(), files);

  ASSERT_EQ(::symlink((outside_ + "/a").c_str(), (target_ + "/evil").c_str()), 0);
  auto r = ReadPayload(target_);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(r.status().message()).find("\"evil\""), std::string::npos);
  ASSERT_EQ(::unlink((target_ + "/evil").c_str()), 0);

  ASSERT_EQ(::symlink(outside_.c_str(), (target_ + "/" + DataDir() + "/d/e/link").c_str()), 0);
  EXPECT_EQ(ReadPayload(target_).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(AtomicWriterTest, OwnershipWhenRequested) {
  opts_.uid = 1234;
  opts_.gid = 5678;
  std::string fresh = dir_ + "/owned";
  auto r = WritePayload(fresh, Payload({{"a", "1"}, {"d/e/f", "2"}}, 0640), opts_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string ts = ReadLinkOf(fresh + "/..data");
  for (const std::string& p :
       {std::string(""), "/" + ts, "/" + ts + "/a", "/" + ts + "/d", "/" + ts + "/d/e",
        "/" + ts + "/d/e/f", std::string("/..data"), std::string("/a"), std::string("/d")}) {
    struct stat st = Lstat(fresh + p);
    EXPECT_EQ(st.st_uid, 1234u) << p;
    EXPECT_EQ(st.st_gid, 5678u) << p;
  }
  EXPECT_EQ(ModeOf(fresh + "/" + ts + "/d/e/f"), 0640u);
  EXPECT_EQ(ModeOf(fresh), 0750u);

  auto same = WritePayload(fresh, Payload({{"a", "1"}, {"d/e/f", "2"}}, 0640), opts_);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->changed);
  opts_.gid = 999;
  auto regrouped = WritePayload(fresh, Payload({{"a", "1"}, {"d/e/f", "2"}}, 0640), opts_);
  ASSERT_TRUE(regrouped.ok());
  EXPECT_TRUE(regrouped->changed);
  EXPECT_EQ(Lstat(fresh + "/" + ReadLinkOf(fresh + "/..data") + "/a").st_gid, 999u);
  EXPECT_EQ(Lstat(fresh + "/" + ReadLinkOf(fresh + "/..data") + "/a").st_uid, 1234u);
}

TEST_F(AtomicWriterTest, ASymlinkedTargetIsNotFollowed) {
  std::string before = Describe(outside_);
  std::string link = dir_ + "/linked";
  ASSERT_EQ(::symlink(outside_.c_str(), link.c_str()), 0);
  auto r = WritePayload(link, Payload({{"a", "s3cr3t"}}), opts_);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
  EXPECT_EQ(std::string(r.status().message()).find("s3cr3t"), std::string::npos);
  EXPECT_EQ(Describe(outside_), before) << "nothing written where the link points";
  EXPECT_EQ(ReadPayload(link).status().code(), StatusCode::kFailedPrecondition);
  // A dangling link: nothing is created where it points either.
  std::string dangling = dir_ + "/dangling";
  ASSERT_EQ(::symlink((outside_ + "/new").c_str(), dangling.c_str()), 0);
  EXPECT_FALSE(WritePayload(dangling, Payload({{"a", "s3cr3t"}}), opts_).ok());
  EXPECT_FALSE(Exists(outside_ + "/new"));
  EXPECT_EQ(Describe(outside_), before);
}

TEST_F(AtomicWriterTest, ATargetInADirectoryEveryoneCanWriteIsRefused) {
  std::string shared = dir_ + "/shared";
  ASSERT_EQ(::mkdir(shared.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(shared.c_str(), 01777), 0);  // as /tmp: sticky, writable by all
  auto r = WritePayload(shared + "/mount", Payload({{"a", "s3cr3t"}}), opts_);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_NE(r.status().message().find("writable by every user"), std::string::npos)
      << r.status().ToString();
  EXPECT_FALSE(Exists(shared + "/mount"));
  // An existing target there is refused too, and left as it was.
  ASSERT_EQ(::mkdir((shared + "/mount").c_str(), 0755), 0);
  EXPECT_EQ(WritePayload(shared + "/mount", Payload({{"a", "s3cr3t"}}), opts_).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(Names(shared + "/mount").empty());
  ASSERT_EQ(::chmod(shared.c_str(), 0755), 0);
  EXPECT_TRUE(WritePayload(shared + "/mount", Payload({{"a", "1"}}), opts_).ok());
}

TEST_F(AtomicWriterTest, ATargetInADirectoryAnotherUserCanWriteIsRefused) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root, to give a directory to another user";
  }
  std::string theirs = dir_ + "/theirs";
  ASSERT_EQ(::mkdir(theirs.c_str(), 0755), 0);
  ASSERT_EQ(::chown(theirs.c_str(), 4242, 0), 0);
  auto r = WritePayload(theirs + "/mount", Payload({{"a", "s3cr3t"}}), opts_);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_NE(r.status().message().find("owned by uid 4242"), std::string::npos)
      << r.status().ToString();
  EXPECT_FALSE(Exists(theirs + "/mount"));
  // Root's, but writable by a group that is not root's.
  ASSERT_EQ(::chown(theirs.c_str(), 0, 4242), 0);
  ASSERT_EQ(::chmod(theirs.c_str(), 0775), 0);
  r = WritePayload(theirs + "/mount", Payload({{"a", "s3cr3t"}}), opts_);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_FALSE(Exists(theirs + "/mount"));
  // Readable by that group is fine.
  ASSERT_EQ(::chmod(theirs.c_str(), 0755), 0);
  EXPECT_TRUE(WritePayload(theirs + "/mount", Payload({{"a", "1"}}), opts_).ok());
}

TEST_F(AtomicWriterTest, ConcurrentReadersSeeTheOldOrTheNewSet) {
  auto version = [](char v) {
    return Files{{"a", std::string(70000, v)}, {"b", std::string(100, v)}, {"d/c", {v}}};
  };
  Write(Payload(version('1')));
  opts_.clock = nullptr;
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    for (int i = 0; i < 60; ++i) {
      auto r = WritePayload(target_, Payload(version(i % 2 ? '1' : '2')), opts_);
      if (!r.ok() || !r->cleanup_status.ok()) {
        ++failures;
      }
    }
    done = true;
  });
  int reads = 0;
  while (!done || reads < 10) {
    auto r = ReadPayload(target_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(*r == version('1') || *r == version('2')) << "a mixed or partial set";
    std::string a = Slurp(target_ + "/a");
    ASSERT_TRUE(a == version('1')["a"] || a == version('2')["a"]) << a.size();
    ++reads;
  }
  writer.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(TimestampDirs().size(), 1u);
}

}  // namespace
}  // namespace coffer::agent
