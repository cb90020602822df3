// Types of entry.mjs (plain JavaScript, run before anything is compiled).
export declare const PACKAGE_DIR: string;
export declare const BUNDLE: string;
export declare const SOURCES: string[];
export declare function newestMtimeMs(paths: string[]): number;
export declare function chooseEntry(bundle?: string, sources?: string[]): 'bundle' | 'source';
