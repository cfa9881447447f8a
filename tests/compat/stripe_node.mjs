// The official Stripe Node SDK against the sandbox. Usage: node stripe_node.mjs BASE_URL
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';

const base = new URL(process.argv[2]);
const run = randomBytes(4).toString('hex');
const stripe = new Stripe(`sk_test_node_${run}`, {
  host: base.hostname, port: Number(base.port), protocol: 'http', maxNetworkRetries: 0,
});

const id = `node-${run}`;
let p = await stripe.products.create({ id, name: 'Node Mug', metadata: { a: '1', b: '2' }, images: ['https://img.example/mug.png'] });
assert.equal(p.id, id);
assert.equal(p.active, true);
p = await stripe.products.update(id, { metadata: { a: '' }, active: false });
assert.deepEqual(p.metadata, { b: '2' });
assert.equal(p.active, false);

const price = await stripe.prices.create({ product: id, currency: 'krw', unit_amount: 12000, lookup_key: `lk-${run}`, recurring: { interval: 'year' } });
assert.equal(price.recurring.interval, 'year');
const next = await stripe.prices.create({ product: id, currency: 'krw', unit_amount: 13000, lookup_key: `lk-${run}`, transfer_lookup_key: true, recurring: { interval: 'year' } });
const byKey = await stripe.prices.list({ lookup_keys: [`lk-${run}`] });
assert.deepEqual(byKey.data.map((x) => x.id), [next.id]);
p = await stripe.products.update(id, { default_price: next.id, active: true, expand: ['default_price'] });
assert.equal(p.default_price.unit_amount, 13000);

for (let i = 0; i < 7; i++) await stripe.products.create({ id: `${id}-${i}`, name: `N${i}` });
const all = [];
for await (const prod of stripe.products.list({ limit: 3 })) all.push(prod.id);
assert.equal(all.length, 8);
assert.equal(all[0], `${id}-6`);

// Shipping, statement and tax fields (issue 16).
p = await stripe.products.update(id, {
  shippable: true, statement_descriptor: 'NODE MUGS', marketing_features: [{ name: 'Glazed' }],
  package_dimensions: { height: 4, length: 3.5, weight: 12.25, width: 3 },
});
assert.equal(p.statement_descriptor, 'NODE MUGS');
assert.deepEqual(p.marketing_features.map((f) => f.name), ['Glazed']);
assert.equal(p.package_dimensions.weight, 12.25);
const taxed = await stripe.prices.create({ product: id, currency: 'eur', unit_amount: 900, tax_behavior: 'exclusive', metadata: { channel: 'store' } });
assert.equal(taxed.tax_behavior, 'exclusive');
assert.equal(taxed.metadata.channel, 'store');
await assert.rejects(stripe.prices.update(taxed.id, { tax_behavior: 'inclusive' }), (e) => e.statusCode === 400 && e.param === 'tax_behavior');
// Tiered and multi-currency prices through the SDK.
const tiered = await stripe.prices.create({
  product: id, currency: 'usd', billing_scheme: 'tiered', tiers_mode: 'graduated',
  tiers: [{ up_to: 5, unit_amount: 500 }, { up_to: 'inf', unit_amount: 400 }],
  currency_options: { gbp: { tiers: [{ up_to: 5, unit_amount: 450 }, { up_to: 'inf', unit_amount: 350 }] } },
});
const tieredGot = await stripe.prices.retrieve(tiered.id, { expand: ['tiers', 'currency_options'] });
assert.deepEqual(tieredGot.tiers.map((t) => t.up_to), [5, null]);
assert.equal(tieredGot.currency_options.gbp.tiers[1].unit_amount, 350);
const multi = await stripe.prices.create({ product: id, currency: 'usd', unit_amount: 700, currency_options: { eur: { unit_amount: 650 } } });
const multiNow = await stripe.prices.update(multi.id, { currency_options: { eur: { unit_amount: 640 } }, expand: ['currency_options'] });
assert.equal(multiNow.currency_options.eur.unit_amount, 640);
const listedTiers = [];
for await (const x of stripe.prices.list({ product: id, expand: ['data.tiers'] })) if (x.id === tiered.id) listedTiers.push(x.tiers.length);
assert.deepEqual(listedTiers, [2]);
await assert.rejects(stripe.products.retrieve('nope'), (e) => e.statusCode === 404 && e.code === 'resource_missing');
await assert.rejects(stripe.prices.update(next.id, { unit_amount: 1 }), (e) => e.statusCode === 400);
await assert.rejects(stripe.products.create({ name: 'x', bogus: 1 }), (e) => e.param === 'bogus');

const a = await stripe.prices.create({ product: id, currency: 'usd', unit_amount: 5 }, { idempotencyKey: `k-${run}` });
const b = await stripe.prices.create({ product: id, currency: 'usd', unit_amount: 5 }, { idempotencyKey: `k-${run}` });
assert.equal(a.id, b.id);
await assert.rejects(
  stripe.prices.create({ product: id, currency: 'usd', unit_amount: 6 }, { idempotencyKey: `k-${run}` }),
  (e) => e.type === 'StripeIdempotencyError',
);

// Webhook endpoints: the secret once, at creation; listed, updated, deleted.
let we = await stripe.webhookEndpoints.create({
  url: 'https://relay.example/stripe/webhook', enabled_events: ['product.created', 'price.updated'],
  metadata: { catalog_sync_catalog: `cat_${run}` },
});
assert.ok(we.id.startsWith('we_') && we.secret.startsWith('whsec_'));
assert.equal((await stripe.webhookEndpoints.retrieve(we.id)).secret, undefined);
we = await stripe.webhookEndpoints.update(we.id, { url: 'https://relay.example/v2/stripe/webhook' });
assert.equal(we.url, 'https://relay.example/v2/stripe/webhook');
const listed = await stripe.webhookEndpoints.list({ limit: 100 });
assert.ok(listed.data.some((e) => e.id === we.id));
await assert.rejects(stripe.webhookEndpoints.create({ url: 'https://x.example', enabled_events: [] }), (e) => e.statusCode === 400);
assert.equal((await stripe.webhookEndpoints.del(we.id)).deleted, true);

// Events: the writes above, newest first, filtered by type, paged with auto-pagination, retrieved.
const events = await stripe.events.list({ types: ['product.created', 'product.updated'], limit: 100 });
assert.ok(events.data.length > 0 && events.data.every((e) => e.type.startsWith('product.')));
const paged = [];
for await (const e of stripe.events.list({ limit: 2 })) paged.push(e.id);
assert.equal(new Set(paged).size, paged.length);
assert.equal((await stripe.events.retrieve(paged[0])).id, paged[0]);

// Connect: a connected account's objects are its own.
const sold = await stripe.products.create({ name: "Seller's mug" }, { stripeAccount: `acct_${run}` });
assert.equal((await stripe.products.retrieve(sold.id, {}, { stripeAccount: `acct_${run}` })).name, "Seller's mug");
await assert.rejects(stripe.products.retrieve(sold.id), (e) => e.statusCode === 404);

// An API version the sandbox does not serve is refused as Stripe refuses it.
const old = new Stripe(`sk_test_node_${run}`, {
  host: base.hostname, port: Number(base.port), protocol: 'http', maxNetworkRetries: 0, apiVersion: '2019-2-19',
});
await assert.rejects(old.products.list(), (e) => e.statusCode === 400 && e.message.includes('Invalid Stripe API version'));

// Authentication, rate-limit and server errors arrive as the SDK's typed errors.
const admin = (method, path, body) => fetch(base.origin + path, { method, body: body && JSON.stringify(body) });
const bogus = new Stripe('bogus', { host: base.hostname, port: Number(base.port), protocol: 'http', maxNetworkRetries: 0 });
await assert.rejects(bogus.products.list(), (e) => e.type === 'StripeAuthenticationError' && e.statusCode === 401);
await admin('POST', '/_sandbox/faults', { rate_limit_rate: 1.0 });
await assert.rejects(stripe.products.list(), (e) => e.type === 'StripeRateLimitError' && e.statusCode === 429);
await admin('POST', '/_sandbox/faults', { error_rate: 1.0, error_statuses: [500] });
await assert.rejects(stripe.products.list(), (e) => e.type === 'StripeAPIError' && e.statusCode === 500);
await admin('DELETE', '/_sandbox/faults');

// A webhook signed by the sandbox verifies with the SDK's own verifier.
const event = stripe.webhooks.constructEvent(
  process.env.SANDBOX_SIGNED_PAYLOAD, process.env.SANDBOX_SIGNATURE, process.env.SANDBOX_WEBHOOK_SECRET,
);
assert.equal(event.type, 'product.updated');

console.log('stripe-node: all checks passed');
