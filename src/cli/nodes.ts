/**
 * `portcullis nodes list|remove`: the cluster's nodes through the admin API (`GET /v1/nodes`;
 * api-client.ts: `--admin-url`/`--token`, `--config`, or
 * `PORTCULLIS_ADMIN_URL`/`PORTCULLIS_ADMIN_TOKEN`) — each node's last heartbeat, the
 * change sequence it has applied against the cluster's latest, and whether it is in
 * sync (like CloudFront's "Deployed" status). `--wait-for-sequence N|latest` waits until
 * every node has applied change N, or every change committed so far; exit 1 when it
 * times out, naming the nodes that did not confirm it — a stale node (no heartbeat
 * within `cluster.staleAfterMs`) never confirms: it may still be serving older state
 * while cut off from the database; a node taken out of the cluster must be removed
 * (`nodes remove NAME`). `--json` prints the API's JSON.
 */
import type { Command } from 'commander';
import type { NodeView } from '../admin/index.js';
import { RESOURCE_EXIT, parseIntegerOption } from './common.js';
import { apiCommandOptions, apiIo, out, printJson, seg, tableText, withApi, type AdminOptions } from './api-client.js';

/** `GET /v1/nodes`. */
export interface NodesView {
  Items: NodeView[];
  Quantity: number;
  LatestSequence: number;
  AllInSync: boolean;
  TimedOut?: boolean;
}

interface Opts extends AdminOptions {
  json?: boolean;
  waitForSequence?: string;
  timeout?: string;
}

/** Registers `portcullis nodes …`. */
export function registerNodesCommands(program: Command): void {
  const nodes = program.command('nodes').description('the cluster\'s nodes (heartbeats, applied change sequence) through the admin API');
  apiCommandOptions(nodes.command('list'))
    .description('list nodes with their last heartbeat and applied change sequence (in sync = has every change)')
    .option('--wait-for-sequence <n>', 'first wait until every node has applied change N, or every change committed so far ("latest", e.g. right after a write); exit 1 naming the nodes that did not (a stale node never confirms)')
    .option('--timeout <ms>', 'how long --wait-for-sequence waits, ms (default 10000, at most 60000)')
    .action(async (opts: Opts) => {
      const query = new URLSearchParams();
      const latest = opts.waitForSequence === 'latest';
      if (opts.waitForSequence !== undefined) {
        if (!latest) query.set('waitForSequence', String(parseIntegerOption(opts.waitForSequence, '--wait-for-sequence', { min: 0, max: Number.MAX_SAFE_INTEGER, unit: 'change sequence, or "latest"' })));
        if (opts.timeout !== undefined) query.set('timeoutMs', String(parseIntegerOption(opts.timeout, '--timeout', { min: 0, max: 60_000, unit: 'ms' })));
      }
      await withApi(opts, async (api) => {
        // `latest`: every change committed so far (e.g. right after a write).
        if (latest) query.set('waitForSequence', String((await api.call<NodesView>('GET', '/v1/nodes')).body.LatestSequence));
        const r = await api.call<NodesView>('GET', `/v1/nodes${query.size ? `?${query}` : ''}`);
        if (opts.json) printJson(r.body);
        else if (r.body.Quantity === 0) out(`no nodes have reported yet (latest change sequence ${r.body.LatestSequence})`);
        else {
          out(tableText(['NAME', 'STATUS', 'APPLIED', 'IN SYNC', 'LAST HEARTBEAT', 'ADMIN', 'REASONS'], r.body.Items.map((n) => [
            n.Name, n.Status, String(n.AppliedSequence), n.InSync ? 'yes' : 'no', `${n.LastHeartbeat} (${Math.round(n.HeartbeatAgeMs / 100) / 10} s ago)`,
            n.AdminAddress ?? '-', n.Reasons.join('; ') || '-',
          ])));
          out(`latest change sequence ${r.body.LatestSequence}: ${r.body.AllInSync ? 'every node has it' : 'not every node has it yet'}`);
        }
        const target = query.get('waitForSequence');
        if (target !== null) {
          const seq = Number(target);
          const unconfirmed = r.body.Items.filter((n) => n.Stale || n.AppliedSequence < seq || n.AppliedSequence > r.body.LatestSequence);
          if (r.body.TimedOut || unconfirmed.length > 0 || r.body.Items.length === 0) {
            const why = (n: NodeView): string => (n.Stale
              ? `${n.Name} (stale: ${n.Reasons[0] ?? 'no recent heartbeat'}; it may still be serving older state — if it was taken out of the cluster, run "portcullis nodes remove ${n.Name}")`
              : n.AppliedSequence > r.body.LatestSequence
                ? `${n.Name} (applied ${n.AppliedSequence}, ahead of the database's latest ${r.body.LatestSequence}: it will reload)`
                : `${n.Name} (applied ${n.AppliedSequence})`);
            apiIo.stderr(r.body.Items.length === 0
              ? `portcullis: change ${seq} is not confirmed: no node has reported\n`
              : `portcullis: change ${seq} is not confirmed by every node within the timeout; unconfirmed: ${unconfirmed.map(why).join(', ')}\n`);
            process.exitCode = RESOURCE_EXIT.error;
          }
        }
      });
    });

  apiCommandOptions(nodes.command('remove'))
    .description('remove a node taken out of the cluster from the node table (a running node reappears at its next heartbeat)')
    .argument('<name>')
    .action(async (name: string, opts: Opts) => {
      await withApi(opts, async (api) => {
        await api.call('DELETE', `/v1/nodes/${seg(name)}`);
        if (opts.json) printJson({ Removed: name });
        else out(`node "${name}" removed`);
      });
    });
}
