// Starts a real `coffer server --dev` process for the SDK conformance tests and stops it again.
//
// The binary comes from $COFFER_BIN (CTest sets it to the built target); without it the
// default build tree location ../../build/coffer is used.  Everything the server writes goes
// into a fresh temporary directory that stop() deletes.

import { spawn } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

function cofferBinary() {
  const bin = process.env.COFFER_BIN || path.resolve(here, "../../build/coffer");
  if (!fs.existsSync(bin)) {
    throw new Error(`coffer binary not found at ${bin} (set COFFER_BIN)`);
  }
  return bin;
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
  for (let attempt = 0; attempt < 20; attempt++) {
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

/**
 * Starts the server and waits until GET /healthz answers 200 over TLS trusted via the
 * server's own CA.  Returns connection facts plus stop() and logs().
 */
export async function startCoffer() {
  const bin = cofferBinary();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-sdk-js-"));
  const dataDir = path.join(root, "data");
  fs.mkdirSync(dataDir);
  const stdoutPath = path.join(root, "server.stdout.log");
  const stderrPath = path.join(root, "server.stderr.log");
  const outFd = fs.openSync(stdoutPath, "w");
  const errFd = fs.openSync(stderrPath, "w");
  const port = await freePort();

  const child = spawn(bin, ["server", "--dev", "--data-dir", dataDir, "--port", String(port)], {
    stdio: ["ignore", outFd, errFd],
  });
  fs.closeSync(outFd);
  fs.closeSync(errFd);

  let exited = null; // { code, signal } once the process is gone
  const exitPromise = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
    child.once("error", (err) => {
      exited = { code: null, signal: null, error: err };
      resolve(exited);
    });
  });

  let stopped = false;
  let stopResult = null;
  async function stop() {
    if (!stopped) {
      stopped = true;
      let killedHard = false;
      if (!exited && child.pid) {
        child.kill("SIGTERM");
        let timer;
        const timeout = new Promise((resolve) => {
          timer = setTimeout(() => resolve("timeout"), STOP_TIMEOUT_MS);
        });
        const outcome = await Promise.race([exitPromise, timeout]);
        clearTimeout(timer);
        if (outcome === "timeout") {
          killedHard = true;
          child.kill("SIGKILL");
          await exitPromise;
        }
      }
      stopResult = { ...exited, killedHard };
    }
    return stopResult;
  }

  function logs() {
    let text = "";
    for (const f of [stdoutPath, stderrPath]) {
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

  const caPath = path.join(dataDir, "tls", "ca.pem");
  const devEnvPath = path.join(dataDir, "dev.env");
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastStatus = 0;
  try {
    for (;;) {
      if (exited) {
        throw new Error(
          `coffer exited before becoming ready (code=${exited.code} signal=${exited.signal}` +
            `${exited.error ? " error=" + exited.error.message : ""})\n--- stderr ---\n${tail(stderrPath)}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(
          `coffer not ready after ${READY_TIMEOUT_MS} ms (ca.pem exists: ${fs.existsSync(caPath)}, ` +
            `dev.env exists: ${fs.existsSync(devEnvPath)}, last /healthz status: ${lastStatus})\n` +
            `--- stderr ---\n${tail(stderrPath)}`,
        );
      }
      if (fs.existsSync(caPath) && fs.existsSync(devEnvPath)) {
        lastStatus = await healthz(port, fs.readFileSync(caPath));
        if (lastStatus === 200) break;
      }
      await sleep(100);
    }
  } catch (err) {
    await cleanup();
    throw err;
  }

  const env = parseDevEnv(fs.readFileSync(devEnvPath, "utf8"));
  for (const key of [
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_AUTHORITY_HOST",
    "COFFER_VAULT_URL",
  ]) {
    if (!env[key]) {
      await cleanup();
      throw new Error(`dev.env lacks ${key}; contents:\n${fs.readFileSync(devEnvPath, "utf8")}`);
    }
  }

  return {
    port,
    dataDir,
    caPath,
    ca: fs.readFileSync(caPath),
    env,
    vaultUrl: env.COFFER_VAULT_URL,
    authorityHost: env.AZURE_AUTHORITY_HOST,
    pid: child.pid,
    stop,
    cleanup,
    logs,
    stderrPath,
  };
}
