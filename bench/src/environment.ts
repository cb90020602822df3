/** Facts about the machine and the software a run measured, recorded with every result. */
import { execFileSync } from 'node:child_process';
import { cpus, release, totalmem } from 'node:os';
import type pg from 'pg';

export type MachineFacts = Awaited<ReturnType<typeof machineFacts>>;

const PG_SETTINGS = `shared_buffers synchronous_commit fsync wal_level full_page_writes
  wal_compression checkpoint_timeout max_wal_size max_connections`.split(/\s+/);

function gitCommit(): string | null {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: 'pipe' });
    const dirty = execFileSync('git', ['status', '--porcelain'], { stdio: 'pipe' }).length > 0;
    return `${head.toString().trim()}${dirty ? ' (uncommitted changes)' : ''}`;
  } catch {
    return null;
  }
}

export async function machineFacts(client: pg.ClientBase) {
  const version = await client.query<{ server_version: string }>(`SHOW server_version`);
  const settings = await client.query<{ name: string; setting: string; unit: string | null }>(
    `SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)`,
    [PG_SETTINGS],
  );
  const cpuList = cpus();
  return {
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    os: `${process.platform} ${release()}`,
    node: process.version,
    postgres: version.rows[0]?.server_version ?? 'unknown',
    postgresSettings: Object.fromEntries(
      settings.rows.map((r) => [r.name, r.unit ? `${r.setting} (${r.unit})` : r.setting]),
    ) as Record<string, string | undefined>,
    commit: gitCommit(),
  };
}
