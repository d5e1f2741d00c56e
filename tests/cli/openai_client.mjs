// Drives `strata serve` with the official `openai` npm client: models, chat and completions,
// streamed and whole, concurrent greedy requests equal to solo ones, a client that leaves
// mid-stream, authentication and request errors. Usage: node openai_client.mjs BASE_URL KEY
import OpenAI from 'openai';

const [base, key] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base, apiKey: key, maxRetries: 0, timeout: 120000 });
const fail = (msg) => { console.error('FAIL: ' + msg); process.exit(1); };
const ok = (msg) => console.log('ok: ' + msg);

const models = await client.models.list();
const model = models.data[0]?.id;
if (!model) fail('no model listed');
ok(`model ${model}`);

const ask = (content, extra = {}) => client.chat.completions.create({
  model, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content }],
  max_tokens: 12, temperature: 0, ignore_eos: true, ...extra });

// Whole and streamed answers agree.
const whole = await ask('Hello there');
const text = whole.choices[0].message.content;
if (typeof text !== 'string' || text.length === 0) fail('empty chat answer');
if (whole.choices[0].finish_reason !== 'length') fail(`finish_reason ${whole.choices[0].finish_reason}`);
if (whole.usage.completion_tokens !== 12 || whole.usage.prompt_tokens <= 0) fail(`usage ${JSON.stringify(whole.usage)}`);
const stream = await ask('Hello there', { stream: true, stream_options: { include_usage: true } });
let streamed = '', finish = null, usage = null, role = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    if (c.delta?.role) role = c.delta.role;
    if (c.delta?.content) streamed += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
  }
}
if (streamed !== text) fail(`streamed ${JSON.stringify(streamed)} != whole ${JSON.stringify(text)}`);
if (role !== 'assistant' || finish !== 'length' || usage?.completion_tokens !== 12) fail('stream metadata');
ok(`chat, whole and streamed: ${JSON.stringify(text)}`);

const comp = await client.completions.create({ model, prompt: 'The quick brown fox', max_tokens: 6, temperature: 0 });
if (typeof comp.choices[0].text !== 'string') fail('completion text');
const comp_stream = await client.completions.create({ model, prompt: 'The quick brown fox', max_tokens: 6, temperature: 0, stream: true });
let ctext = '';
for await (const chunk of comp_stream) ctext += chunk.choices[0]?.text ?? '';
if (ctext !== comp.choices[0].text) fail('streamed completion differs');
ok('completions, whole and streamed');

// Eight concurrent greedy requests give what each gives alone.
const prompts = ['one', 'two words', 'a longer question about experts', 'Paris', '1 2 3 4 5', 'def f(x):', 'zzz', 'MoE'];
const solo = [];
for (const p of prompts) solo.push((await ask(p)).choices[0].message.content);
const together = await Promise.all(prompts.map((p) => ask(p)));
together.forEach((r, i) => {
  if (r.choices[0].message.content !== solo[i]) fail(`request ${i}: batched ${JSON.stringify(r.choices[0].message.content)} != solo ${JSON.stringify(solo[i])}`);
});
ok('8 concurrent greedy requests equal their solo outputs');

// A client that leaves mid-stream: its request is cancelled.
const metric = async (name) => {
  const res = await fetch(base.replace(/\/v1$/, '') + '/metrics', { headers: { Authorization: `Bearer ${key}` } });
  const line = (await res.text()).split('\n').find((l) => l.startsWith(name + ' '));
  return Number(line?.split(' ')[1]);
};
const before = await metric('strata_requests_cancelled_total');
const controller = new AbortController();
const long = await client.chat.completions.create(
  { model, messages: [{ role: 'user', content: 'Tell a long story' }], max_tokens: 900, temperature: 0, ignore_eos: true, stream: true },
  { signal: controller.signal });
let seen = 0;
try {
  for await (const _ of long) { if (++seen === 3) controller.abort(); }
} catch (e) { /* the abort */ }
let after = before;
for (let i = 0; i < 100 && after <= before; ++i) {
  await new Promise((r) => setTimeout(r, 100));
  after = await metric('strata_requests_cancelled_total');
}
if (!(after > before)) fail('a client that left was not cancelled');
ok('a client leaving mid-stream cancels its request');

// Errors the client sees as such.
try { await client.chat.completions.create({ model, messages: [] }); fail('empty messages accepted'); }
catch (e) { if (e.status !== 400 || !String(e.message).includes('messages')) fail(`bad request: ${e.status} ${e.message}`); }
try { await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], temperature: 9 }); fail('temperature 9 accepted'); }
catch (e) { if (e.status !== 400 || !String(e.message).includes('temperature')) fail(`bad temperature: ${e.status} ${e.message}`); }
const stranger = new OpenAI({ baseURL: base, apiKey: 'wrong', maxRetries: 0 });
try { await stranger.models.list(); fail('wrong key accepted'); }
catch (e) { if (e.status !== 401) fail(`wrong key: ${e.status}`); }
ok('errors: 400 naming the field, 401 for a wrong key');
