// The panel in a real browser: Debian's chromium driven by playwright-core, against the real
// `keyloop` binary (its demo: a simulated Anthropic API with four credentials, one of which
// answers half its requests with 500s, and steady traffic). Screenshots of every page are
// saved to ui/test-results/screenshots/.
//
// Run with `npm run test:e2e`; KEYLOOP_BIN names the binary, CHROMIUM_PATH the browser.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const shots = join(here, '..', 'test-results', 'screenshots');
const TOKEN = 'kla_e2e_' + Math.random().toString(36).slice(2).padEnd(16, '0');
const WAIT = 20_000;

let gateway;
let panel;
let adminApi;
let browser;
let page;

/** Starts `keyloop demo` on free ports and reads its addresses from the banner it prints. */
async function startDemo() {
  const bin = process.env.KEYLOOP_BIN;
  assert.ok(bin, 'KEYLOOP_BIN must name the keyloop binary');
  const child = spawn(
    bin,
    ['demo', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--admin-token', TOKEN, '--rate', '8'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stderr = [];
  child.stderr.on('data', (chunk) => stderr.push(chunk));
  const lines = createInterface({ input: child.stdout });
  const found = {};
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start: ${Buffer.concat(stderr)}`)), WAIT);
    child.on('exit', (code) => reject(new Error(`demo exited with ${code}: ${Buffer.concat(stderr)}`)));
    lines.on('line', (line) => {
      const m = line.match(/^\s+(gateway|panel)\s+(http:\/\/\S+)/);
      if (m) found[m[1]] = m[2];
      if (found.gateway && found.panel) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  lines.on('line', () => {}); // keep draining the status lines
  return { child, panel: found.panel };
}

async function api(path, init = {}) {
  const response = await fetch(adminApi + path, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers ?? {}) },
  });
  assert.ok(response.ok, `${init.method ?? 'GET'} ${path}: ${response.status}`);
  return response.status === 204 ? null : response.json();
}

/** Polls the admin API until `check` returns a value (the demo's traffic makes it come). */
async function eventually(what, check) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function shot(name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

function row(name) {
  return page.locator(`[data-testid="credential-row"][data-credential-name="${name}"]`);
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  const demo = await startDemo();
  gateway = demo.child;
  panel = demo.panel;
  adminApi = panel.replace(/\/admin\/$/, '/admin/api');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, colorScheme: 'light' });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT);
});

after(async () => {
  await browser?.close();
  gateway?.kill('SIGINT');
});

test('a wrong token is refused and the right one signs in', async () => {
  await page.goto(panel);
  await page.getByTestId('login-token').fill('not-the-token');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('error').waitFor();
  assert.match(await page.getByTestId('error').innerText(), /wrong admin token/i);
  await shot('login');

  await page.getByTestId('login-token').fill(TOKEN);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('overview-tiles').waitFor();
});

test('the overview shows live numbers and charts drawn from the traffic', async () => {
  // The live tiles fill from the event stream as the demo's requests are settled.
  await eventually('a request rate above zero', async () => {
    const text = await page.getByTestId('overview-tiles').innerText();
    return /[1-9]/.test(text.split('\n').slice(0, 4).join(' '));
  });
  await page.getByTestId('split-credential').click();
  const canvas = page.getByTestId('chart-requests-canvas');
  await canvas.waitFor();
  // One legend row per credential that served traffic, beside the time axis.
  const legend = page.locator('[data-testid="chart-requests"] .u-legend .u-series');
  await eventually('a series per credential', async () => (await legend.count()) >= 3);
  const labels = await legend.allInnerTexts();
  assert.ok(labels.some((l) => l.includes('steady')), labels.join(' | '));
  // The canvas has ink of more than one colour: axes and at least one drawn series.
  const colours = await canvas.evaluate((c) => {
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < data.length; i += 4 * 7) if (data[i + 3] > 200) seen.add(`${data[i]},${data[i + 1]},${data[i + 2]}`);
    return seen.size;
  });
  assert.ok(colours >= 3, `the chart looks empty (${colours} colours)`);
  await shot('overview-light');
  await page.getByTestId('theme-toggle').click();
  await shot('overview-dark');
  await page.getByTestId('theme-toggle').click();
});

test('disabling a credential changes its badge, and a change made elsewhere arrives live', async () => {
  await page.getByTestId('nav-credentials').click();
  await row('steady').waitFor();
  await row('steady').getByTestId('toggle-enabled').click();
  await row('steady').locator('[data-testid="state-badge"][data-state="disabled"]').waitFor();

  // Disabled through the API, not the page: the badge follows the event stream.
  const { credentials } = await api('/credentials');
  const oauth = credentials.find((c) => c.name === 'oauth');
  assert.equal(oauth.state, 'active');
  await api(`/credentials/${oauth.id}/disable`, { method: 'POST' });
  await row('oauth').locator('[data-testid="state-badge"][data-state="disabled"]').waitFor();
  await shot('credentials');

  await row('steady').getByTestId('toggle-enabled').click();
  await row('steady').locator('[data-testid="state-badge"][data-state="active"]').waitFor();
  await api(`/credentials/${oauth.id}/enable`, { method: 'POST' });
});

test('an OAuth credential shows its organisation and its subscription windows, the binding one marked', async () => {
  await page.getByTestId('nav-credentials').click();
  // The windows come with the account's answers: wait until the page shows the 5-hour one.
  const usage = page.locator('[data-testid="subscription"][data-credential-name="oauth"]');
  const fiveHour = usage.locator('[data-testid="usage-window"][data-window="five_hour"]');
  await fiveHour.waitFor();
  const text = await fiveHour.innerText();
  assert.match(text, /5-hour/);
  assert.match(text, /\d+% used/);
  assert.match(text, /resets in \d+h \d\dm/);
  const used = Number(await fiveHour.getByTestId('usage-bar').getAttribute('aria-valuenow'));
  assert.ok(used >= 0 && used <= 100, `utilization ${used}`);
  // The demo's 5-hour window is the smallest and fills fastest: it binds, and the forecast
  // says when it will be spent once two answers have shown the rate.
  assert.equal(await fiveHour.getAttribute('data-binding'), 'true');
  assert.equal(await usage.locator('[data-binding="true"]').count(), 1);
  await fiveHour.getByTestId('spent-at').waitFor();
  assert.match(await fiveHour.getByTestId('spent-at').innerText(), /^spent (in ~\d+ ?(min|h|d)|any moment now)$/);
  for (const [name, label] of [
    ['seven_day', '7-day'],
    ['seven_day_opus', '7-day Opus'],
  ]) {
    assert.match(await usage.locator(`[data-window="${name}"]`).innerText(), new RegExp(`^${label}\\b`));
  }

  // Its organisation: the one the simulated provider reported, shortened, in full on hover.
  const { credentials } = await api('/credentials');
  const oauth = credentials.find((c) => c.name === 'oauth');
  assert.ok(oauth.organization, 'the API names no organisation for the OAuth credential');
  assert.equal(oauth.organization, oauth.organization_reported);
  const organization = row('oauth').getByTestId('organization');
  assert.equal(await organization.getAttribute('data-organization'), oauth.organization);
  assert.equal(await organization.getAttribute('data-source'), 'reported');
  assert.ok((await organization.getAttribute('title')).includes(oauth.organization));
  assert.match(await organization.innerText(), new RegExp(`^${oauth.organization.slice(0, 8)}…\\s+reported$`));

  // Grouped by organisation, every credential sits under a heading of its own organisation.
  await page.getByTestId('order-organization').click();
  await page.getByTestId('organization-group').first().waitFor();
  assert.equal(await page.getByTestId('organization-group').count(), new Set(credentials.map((c) => c.organization)).size);
  await usage.scrollIntoViewIfNeeded();
  await shot('credentials-windows-light');
  await page.getByTestId('theme-toggle').click();
  await shot('credentials-windows-dark');
  await page.getByTestId('theme-toggle').click();
  await page.getByTestId('order-listed').click();
});

test('a credential added with a refresh token and a burst limit shows both, the refresh token nowhere', async () => {
  await page.getByTestId('nav-credentials').click();
  await page.getByTestId('add-credential').click();
  const form = page.getByTestId('credential-form');
  await form.getByTestId('field-name').fill('e2e-oauth');
  // The refresh token's inputs appear once the secret reads as an OAuth token.
  assert.equal(await form.getByTestId('field-refresh-token').count(), 0);
  await form.getByTestId('field-secret').fill('sk-ant-oat01-e2e-access-0000000000000000');
  const refreshToken = 'sk-ant-ort01-e2e-refresh-' + Math.random().toString(36).slice(2).padEnd(16, '0');
  await form.getByTestId('field-refresh-token').fill(refreshToken);
  await form.getByTestId('field-token-expires').fill('2030-01-31T12:00');
  await form.getByTestId('field-rps').fill('3');
  // Added disabled, so the demo's traffic leaves its token alone.
  await form.getByTestId('field-enabled').uncheck();
  await form.getByTestId('save-credential').click();
  await form.waitFor({ state: 'detached' });

  const added = row('e2e-oauth');
  await added.waitFor();
  assert.match(await added.getByTestId('oauth-refresh').innerText(), /^refreshes automatically · token expires in \d+ d$/);
  assert.equal(await added.getByTestId('caps').innerText(), '3/s');
  assert.ok(!(await page.content()).includes(refreshToken), 'the refresh token is on the page');
  const view = (await api('/credentials')).credentials.find((c) => c.name === 'e2e-oauth');
  assert.equal(view.refreshable, true);
  assert.equal(view.rps, 3);
  assert.ok(!JSON.stringify(view).includes(refreshToken), 'the API echoes the refresh token');
  await shot('credentials-added-oauth');
});

test('a CSV import shows its dry-run report, bad row included, before anything is applied', async () => {
  await page.getByTestId('import-credentials').click();
  const csv = [
    'name,secret,priority',
    'imported-a,sk-ant-api03-e2e-imported-a-000000000000000,1',
    'imported-b,sk-ant-oat01-e2e-imported-b-000000000000000,0',
    'imported-bad,,zero',
  ].join('\n');
  await page.getByTestId('import-file').setInputFiles({ name: 'keys.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  const report = page.getByTestId('import-report');
  await report.waitFor();
  await page.locator('[data-testid="import-row"][data-status="malformed"]').waitFor();
  assert.equal(await page.locator('[data-testid="import-row"][data-status="valid"]').count(), 2);
  const bad = await page.locator('[data-testid="import-row"][data-status="malformed"]').innerText();
  assert.match(bad, /secret/i);
  assert.ok(!(await report.innerText()).includes('e2e-imported-a'), 'a secret is shown in the report');
  // Nothing is written by the dry run.
  assert.ok(!(await api('/credentials')).credentials.some((c) => c.name === 'imported-a'));
  await shot('credentials-import-report');

  await page.getByTestId('import-apply').click();
  await page.getByTestId('import-result').waitFor();
  const names = (await api('/credentials')).credentials.map((c) => c.name);
  assert.ok(names.includes('imported-a') && names.includes('imported-b') && !names.includes('imported-bad'), names.join());
  await page.keyboard.press('Escape');
  await row('imported-b').waitFor();
});

test('a failed-over request is found in the log with the attempts that failed', async () => {
  // The demo's "flaky" credential answers half its requests with 500s, and each of those
  // requests is retried on another credential.
  const retried = await eventually('a request that failed over', async () => {
    const { requests } = await api('/requests?limit=50');
    return requests.find((r) => r.attempts.length > 0 && r.outcome === 'success');
  });
  await page.getByTestId('nav-requests').click();
  const target = page.locator(`[data-testid="request-row"][data-request-id="${retried.request_id}"]`);
  await target.waitFor();
  await target.click();
  const details = page.getByTestId('request-details');
  await details.waitFor();
  const attempt = details.getByTestId('attempt').first();
  assert.match(await attempt.innerText(), new RegExp(retried.attempts[0].credential_name));
  assert.equal(await attempt.getAttribute('data-class'), retried.attempts[0].class);
  assert.match(await details.getByTestId('attempt-final').innerText(), new RegExp(retried.credential_name));
  await shot('requests');
});

test('a client is created with its key shown once, and every action is in the audit log', async () => {
  await page.getByTestId('nav-clients').click();
  await page.getByTestId('create-client').click();
  await page.getByTestId('client-name').fill('e2e-team');
  await page.getByTestId('client-submit').click();
  const key = await page.getByTestId('new-key-value').innerText();
  assert.match(key, /^klk_/);
  await shot('clients-new-key');
  await page.getByTestId('new-key-done').click();
  await page.locator('[data-testid="client-row"]', { hasText: 'e2e-team' }).waitFor();
  assert.ok(!(await page.content()).includes(key), 'the key is still on the page');
  await shot('clients');

  await page.getByTestId('nav-audit').click();
  await page.getByTestId('audit-row').first().waitFor();
  const audit = await page.getByTestId('audit-table').innerText();
  for (const action of ['client.create', 'credential.import', 'credential.disable', 'session.sign_in']) {
    assert.ok(audit.includes(action), `${action} is missing from the audit log`);
  }
  await shot('audit');
});
