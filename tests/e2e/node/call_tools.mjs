// A non-Python MCP client: spawns the command given as arguments on stdio, lists the tools,
// calls the ones named in the TOOL_CALLS environment variable (a JSON list of [name, args]),
// and prints one JSON document with what it saw.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [command, ...args] = process.argv.slice(2);
const transport = new StdioClientTransport({ command, args, env: { ...process.env }, stderr: "inherit" });
const client = new Client({ name: "xcourier-node-e2e", version: "1.0.0" });
await client.connect(transport);
const listed = await client.listTools();
const calls = [];
for (const [name, callArgs] of JSON.parse(process.env.TOOL_CALLS ?? "[]")) {
  const result = await client.callTool({ name, arguments: callArgs });
  calls.push({ name, result });
}
console.log(JSON.stringify({ protocolVersion: transport.protocolVersion ?? null, tools: listed.tools, calls }));
await client.close();
