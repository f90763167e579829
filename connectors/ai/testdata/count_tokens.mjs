// Regenerates token_counts.json: npm install js-tiktoken@1.0.21 && node count_tokens.mjs . > token_counts.json
// Reference counts: js-tiktoken (an independent JavaScript port of tiktoken, with its own
// bundled ranks), counted as in OpenAI's cookbook num_tokens_from_messages.
import { Tiktoken } from "js-tiktoken/lite";
import o200k from "js-tiktoken/ranks/o200k_base";
import cl100k from "js-tiktoken/ranks/cl100k_base";
import fs from "node:fs";
const dir = process.argv[2];
const encs = { o200k_base: new Tiktoken(o200k), cl100k_base: new Tiktoken(cl100k) };
const models = { "gpt-4o": "o200k_base", "gpt-3.5-turbo": "cl100k_base" };
const out = [];
for (const file of fs.readdirSync(dir).filter(f => f.endsWith(".txt")).sort()) {
  const text = fs.readFileSync(dir + "/" + file, "utf8");
  for (const [model, encName] of Object.entries(models)) {
    const enc = encs[encName];
    // tokens_per_message = 3; role and content encoded; + 3 for the reply priming.
    const n = 3 + enc.encode("user").length + enc.encode(text).length + 3;
    out.push({ file, model, encoding: encName, prompt_tokens: n });
  }
}
console.log(JSON.stringify({
  method: "js-tiktoken 1.0.21; OpenAI cookbook num_tokens_from_messages: 3 per message + tokens(role) + tokens(content), + 3 reply priming; one user message per sample",
  samples: out }, null, 2));
