// Captures the tool, prompt and resource-template lists of the npm reference servers into
// reference-servers.json (the zero-false-positive fixture of the guard's poisoning scan).
// Run from the repository root after `npm ci` in tests/e2e:
//   node tests/corpus/guard/capture-reference.mjs
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "..", "..", "e2e", "node_modules", "@modelcontextprotocol");
const servers = {
  "server-everything": [join(modules, "server-everything", "dist", "index.js"), "stdio"],
  "server-filesystem": [join(modules, "server-filesystem", "dist", "index.js"), "/tmp"],
};
const lists = [
  ["tools/list", "tools"],
  ["prompts/list", "prompts"],
  ["resources/templates/list", "resourceTemplates"],
];

function capture(args) {
  return new Promise((resolve, reject) => {
    const child = spawn("node", args, { stdio: ["pipe", "pipe", "ignore"] });
    const out = { tools: [], prompts: [], resourceTemplates: [] };
    const pending = new Map();
    let next = 1;
    const send = (msg) => child.stdin.write(JSON.stringify(msg) + "\n");
    const request = (method, params) =>
      new Promise((res) => {
        const id = next++;
        pending.set(id, res);
        send({ jsonrpc: "2.0", id, method, params });
      });
    createInterface({ input: child.stdout }).on("line", (line) => {
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (msg.id !== undefined && pending.has(msg.id)) {
        pending.get(msg.id)(msg);
        pending.delete(msg.id);
      }
    });
    child.on("error", reject);
    (async () => {
      const init = await request("initialize", {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "portcullis-capture", version: "0" },
      });
      const caps = init.result?.capabilities ?? {};
      send({ jsonrpc: "2.0", method: "notifications/initialized" });
      for (const [method, key] of lists) {
        const needs = key === "tools" ? "tools" : key === "prompts" ? "prompts" : "resources";
        if (!caps[needs]) continue;
        let cursor;
        do {
          const reply = await request(method, cursor ? { cursor } : {});
          if (reply.error) break;
          out[key].push(...(reply.result[key] ?? []));
          cursor = reply.result.nextCursor;
        } while (cursor);
      }
      child.kill();
      resolve(out);
    })().catch(reject);
  });
}

const fixture = {};
for (const [name, args] of Object.entries(servers)) {
  fixture[name] = await capture(args);
}
writeFileSync(join(here, "reference-servers.json"), JSON.stringify(fixture, null, 2) + "\n");
console.log(
  Object.entries(fixture)
    .map(([n, f]) => `${n}: ${f.tools.length} tools, ${f.prompts.length} prompts, ${f.resourceTemplates.length} templates`)
    .join("\n"),
);
