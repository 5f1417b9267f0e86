export function d1Bindings(root: string): string[];
export function migrateLocalD1(root: string, persistTo?: string): Promise<void>;
