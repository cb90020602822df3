import type { TestProject } from 'vitest/node';
import { startTestPostgres } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgTemplateDatabase: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const postgres = await startTestPostgres();
  project.provide('pgAdminUrl', postgres.adminUrl);
  project.provide('pgTemplateDatabase', postgres.templateDatabase);
  return () => postgres.stop();
}
