// Starts a real `coffer server --dev` process for the SDK conformance tests and stops it again.
//
// The JavaScript twin of tests/integration/harness.py (CofferServer), the launcher of the Python
// suites: it starts the server the same way, and a change to one is made to both (the harness's
// docstring lists what they share):
//   * `coffer server --dev --data-dir <tmp>/data --port <port>`, the data directory made by the
//     server, COFFER_MASTER_KEY removed from its environment;
//   * a port free on both 127.0.0.1 and ::1, and another one when the server finds it taken
//     ("already in use"), up to 5 starts;
//   * ready once ca.pem and dev.env exist and GET https://localhost:<port>/healthz, trusting only
//     the server's CA, answers 200, waited for at most READY_TIMEOUT_MS (a bound, never a
//     performance claim); a server that exits first fails the start with its stderr;
//   * dev.env must name the same variables;
//   * stop: SIGTERM by PID, SIGKILL after STOP_TIMEOUT_MS; cleanup() stops the server and removes
//     the temporary directory, also when the start failed.
//
// The binary comes from $COFFER_BIN (CTest sets it to the built target); without it the
// default build tree location ../../build/coffer is used.

import { spawn } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const START_ATTEMPTS = 5;
const DEV_ENV_KEYS = [
  "AZURE_TENANT_ID",
  "COFFER_TENANT_ID",
  "AZURE_CLIENT_ID",
  "AZURE_CLIENT_SECRET",
  "AZURE_AUTHORITY_HOST",
  "COFFER_SUBSCRIPTION_ID",
  "COFFER_VAULT_URL",
];

function cofferBinary() {
  const bin = process.env.COFFER_BIN || path.resolve(here, "../../build/coffer");
  if (!fs.existsSync(bin)) {
    throw new Error(`coffer binary not found at ${bin} (set COFFER_BIN)`);
  }
  return path.resolve(bin);
}

function listenOnce(host, port) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen({ host, port, exclusive: true }, () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
}

// A port that is free on both loopback addresses the server binds (127.0.0.1 and ::1).
async function freePort() {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnce("127.0.0.1", 0);
    try {
      await listenOnce("::1", port);
      return port;
    } catch {
      // taken on ::1; try another one
    }
  }
  throw new Error("could not find a TCP port free on both 127.0.0.1 and ::1");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function healthz(port, ca) {
  return new Promise((resolve) => {
    const req = https.get(
      { host: "localhost", port, path: "/healthz", ca, timeout: 2000, agent: false },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(0));
  });
}

/** Parses `export KEY=value` lines. */
export function parseDevEnv(text) {
  const env = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2];
  }
  return env;
}

function tail(file, max = 4000) {
  try {
    const text = fs.readFileSync(file, "utf8");
    return text.length > max ? "..." + text.slice(-max) : text;
  } catch {
    return "";
  }
}

// One server process: spawn(), waitReady(), stop().
class ServerProcess {
  constructor(bin, dataDir, port, stdoutPath, stderrPath) {
    const env = { ...process.env };
    delete env.COFFER_MASTER_KEY;
    const outFd = fs.openSync(stdoutPath, "w");
    const errFd = fs.openSync(stderrPath, "w");
    this.stderrPath = stderrPath;
    this.child = spawn(bin, ["server", "--dev", "--data-dir", dataDir, "--port", String(port)], {
      stdio: ["ignore", outFd, errFd],
      env,
    });
    fs.closeSync(outFd);
    fs.closeSync(errFd);
    this.exited = null; // { code, signal } once the process is gone
    this.exitPromise = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exited = { code, signal };
        resolve(this.exited);
      });
      this.child.once("error", (err) => {
        this.exited = { code: null, signal: null, error: err };
        resolve(this.exited);
      });
    });
    this.stopResult = null;
  }

  // Resolves once ready; rejects with the reason (and the server's stderr) otherwise.
  async waitReady(port, caPath, devEnvPath) {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastStatus = 0;
    for (;;) {
      if (this.exited) {
        const e = this.exited;
        throw new Error(
          `coffer exited before becoming ready (code=${e.code} signal=${e.signal}` +
            `${e.error ? " error=" + e.error.message : ""})\n--- stderr ---\n${tail(this.stderrPath)}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(
          `coffer not ready after ${READY_TIMEOUT_MS} ms (ca.pem exists: ${fs.existsSync(caPath)}, ` +
            `dev.env exists: ${fs.existsSync(devEnvPath)}, last /healthz status: ${lastStatus})\n` +
            `--- stderr ---\n${tail(this.stderrPath)}`,
        );
      }
      if (fs.existsSync(caPath) && fs.existsSync(devEnvPath)) {
        lastStatus = await healthz(port, fs.readFileSync(caPath));
        if (lastStatus === 200) return;
      }
      await sleep(50);
    }
  }

  // SIGTERM, SIGKILL after STOP_TIMEOUT_MS. Idempotent; resolves to { code, signal, killedHard }.
  async stop() {
    if (this.stopResult === null) {
      this.stopResult = (async () => {
        let killedHard = false;
        if (!this.exited && this.child.pid) {
          this.child.kill("SIGTERM");
          let timer;
          const timeout = new Promise((resolve) => {
            timer = setTimeout(() => resolve("timeout"), STOP_TIMEOUT_MS);
          });
          const outcome = await Promise.race([this.exitPromise, timeout]);
          clearTimeout(timer);
          if (outcome === "timeout") {
            killedHard = true;
            this.child.kill("SIGKILL");
            await this.exitPromise;
          }
        }
        return { ...this.exited, killedHard };
      })();
    }
    return this.stopResult;
  }
}

/**
 * Starts the server and waits until it is ready (see above). Returns connection facts plus
 * stop(), cleanup() and logs().
 */
export async function startCoffer() {
  const bin = cofferBinary();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-sdk-js-"));
  const dataDir = path.join(root, "data");
  const caPath = path.join(dataDir, "tls", "ca.pem");
  const devEnvPath = path.join(dataDir, "dev.env");
  const logPaths = [];
  let server = null;

  async function stop() {
    return server ? server.stop() : { code: null, signal: null, killedHard: false };
  }

  function logs() {
    let text = "";
    for (const f of logPaths) {
      try {
        text += fs.readFileSync(f, "utf8");
      } catch {
        // missing log file: nothing written
      }
    }
    return text;
  }

  async function cleanup() {
    await stop();
    fs.rmSync(root, { recursive: true, force: true });
  }

  let port = 0;
  try {
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const stdoutPath = path.join(root, `server-${attempt}.stdout.log`);
      const stderrPath = path.join(root, `server-${attempt}.stderr.log`);
      logPaths.push(stdoutPath, stderrPath);
      server = new ServerProcess(bin, dataDir, port, stdoutPath, stderrPath);
      try {
        await server.waitReady(port, caPath, devEnvPath);
        break;
      } catch (err) {
        await server.stop();
        if (attempt < START_ATTEMPTS && tail(stderrPath).includes("already in use")) {
          continue; // another process took the port before the server bound it
        }
        throw err;
      }
    }
    const env = parseDevEnv(fs.readFileSync(devEnvPath, "utf8"));
    const missing = DEV_ENV_KEYS.filter((key) => !env[key]);
    if (missing.length > 0) {
      throw new Error(`dev.env lacks ${missing}; contents:\n${fs.readFileSync(devEnvPath, "utf8")}`);
    }
    return {
      port,
      dataDir,
      caPath,
      ca: fs.readFileSync(caPath),
      env,
      vaultUrl: env.COFFER_VAULT_URL,
      // The tenant's id; dev.env's AZURE_TENANT_ID is its alias "adfs".
      tenantId: env.COFFER_TENANT_ID,
      authorityHost: env.AZURE_AUTHORITY_HOST,
      pid: server.child.pid,
      stop,
      cleanup,
      logs,
      stderrPath: logPaths[logPaths.length - 1],
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
