/**
 * Who may read /metrics: a bearer token when one is configured, a listener of its own when one is
 * configured (the main port then answers 404), and by default only when the main port listens on
 * loopback.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/server/config.js';
import { startTestServer } from '../server.js';

const TOKEN = 'metrics-token-0123456789abcdef';

function scrape(url: string, authorization?: string) {
  return fetch(`${url}/metrics`, authorization ? { headers: { authorization } } : {});
}

describe('/metrics access', () => {
  it('with TETHER_METRICS_TOKEN: no token, a wrong one or one in the query → 401; the token → 200', async () => {
    await using server = await startTestServer({ env: { TETHER_METRICS_TOKEN: TOKEN } });
    for (const authorization of [
      undefined,
      'Bearer wrong',
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Basic ${Buffer.from(`metrics:${TOKEN}`).toString('base64')}`,
      TOKEN,
    ]) {
      const refused = await scrape(server.url, authorization);
      expect(refused.status, String(authorization)).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="tether-metrics"');
      expect(await refused.text()).not.toContain('tether_');
    }
    const inQuery = await fetch(`${server.url}/metrics?token=${TOKEN}`);
    expect(inQuery.status).toBe(401);

    const ok = await scrape(server.url, `Bearer ${TOKEN}`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('tether_rpc_requests_total');
    // The token is never printed.
    expect(server.logs()).not.toContain(TOKEN);
  });

  it('with TETHER_METRICS_LISTEN: the main port answers 404, the metrics port serves it (behind the token if set)', async () => {
    await using server = await startTestServer({
      env: { TETHER_METRICS_LISTEN: '127.0.0.1:0', TETHER_METRICS_TOKEN: TOKEN },
    });
    expect(server.metricsUrl).not.toBeNull();
    const metricsUrl = server.metricsUrl!;
    expect(metricsUrl).not.toBe(server.url);

    const main = await scrape(server.url, `Bearer ${TOKEN}`);
    expect(main.status).toBe(404);
    expect(await main.text()).not.toContain('tether_');
    const index = (await (
      await fetch(`${server.url}/`, { headers: { accept: 'application/json' } })
    ).json()) as Record<string, unknown>;
    expect(index.metrics).toBeUndefined();

    expect((await scrape(metricsUrl)).status).toBe(401);
    const ok = await scrape(metricsUrl, `Bearer ${TOKEN}`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('tether_rpc_requests_total');
    // Nothing but metrics on the metrics port.
    expect((await fetch(`${metricsUrl}/trpc/system.info`)).status).toBe(404);
    expect((await fetch(`${metricsUrl}/livez`)).status).toBe(404);
    // The main port still serves the API.
    expect((await fetch(`${server.url}/trpc/system.info`)).status).toBe(200);
  });

  it('with TETHER_METRICS_LISTEN and no token: the metrics port serves anyone who reaches it', async () => {
    await using server = await startTestServer({ env: { TETHER_METRICS_LISTEN: '127.0.0.1:0' } });
    expect((await scrape(server.url)).status).toBe(404);
    expect((await scrape(server.metricsUrl!)).status).toBe(200);
  });

  it('by default: served on a loopback listener; not served (404) on a non-loopback one, with a warning at start', async () => {
    await using loopback = await startTestServer();
    expect((await scrape(loopback.url)).status).toBe(200);
    expect(loopback.metricsUrl).toBeNull();

    await using open = await startTestServer({ env: { TETHER_HOST: '0.0.0.0' } });
    const refused = await scrape(open.url);
    expect(refused.status).toBe(404);
    expect(await refused.text()).not.toContain('tether_');
    const warning = open
      .logs()
      .split('\n')
      .filter((line) => line.includes('"level":40'))
      .find((line) => line.includes('TETHER_METRICS_TOKEN'));
    expect(warning).toBeDefined();

    // A token opens it on the same non-loopback listener.
    await using tokened = await startTestServer({
      env: { TETHER_HOST: '0.0.0.0', TETHER_METRICS_TOKEN: TOKEN },
    });
    expect((await scrape(tokened.url)).status).toBe(401);
    expect((await scrape(tokened.url, `Bearer ${TOKEN}`)).status).toBe(200);
  });

  it('a metrics address that is taken stops the start with the error', async () => {
    await using first = await startTestServer({ env: { TETHER_METRICS_LISTEN: '127.0.0.1:0' } });
    const taken = new URL(first.metricsUrl!).port;
    await expect(
      startTestServer({ env: { TETHER_METRICS_LISTEN: `127.0.0.1:${taken}` } }),
    ).rejects.toThrow(/EADDRINUSE/);
    expect((await scrape(first.metricsUrl!)).status).toBe(200);
  });
});

describe('metrics configuration', () => {
  it('a short or spaced token and a malformed listen address stop the start', () => {
    for (const env of [
      { TETHER_METRICS_TOKEN: 'short' },
      { TETHER_METRICS_TOKEN: 'has a space in it, sixteen+' },
      { TETHER_METRICS_LISTEN: '9464' },
      { TETHER_METRICS_LISTEN: 'host:' },
      { TETHER_METRICS_LISTEN: '::1:9464' },
      { TETHER_METRICS_LISTEN: '127.0.0.1:70000' },
    ]) {
      expect(() => loadConfig(env), JSON.stringify(env)).toThrow(ConfigError);
    }
    expect(loadConfig({ TETHER_METRICS_LISTEN: '[::1]:9464' }).metricsListen).toEqual({
      host: '::1',
      port: 9464,
    });
    expect(loadConfig({}).metricsToken).toBeUndefined();
  });
});
