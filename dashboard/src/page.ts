/** What every page gets: where to draw, who is signed in, the path's parameters, and a signal that aborts when the reader leaves the page (close event streams, stop timers). */
export interface Me {
  id: string;
  role: 'admin' | 'approver';
  name: string;
  session_id: string;
  expires_at: string;
}

export interface PageContext {
  root: HTMLElement;
  me: Me;
  params: Record<string, string>;
  query: URLSearchParams;
  signal: AbortSignal;
  navigate(path: string): void;
}

export interface PageDef {
  /** The path, with :name parameters, as the server serves it (src/http/routes/dashboard.ts). */
  path: string;
  title: string;
  /** Who may open it; the API decides in the end, this only hides what would be refused. */
  roles: ReadonlyArray<Me['role']>;
  /** Shown in the navigation bar. */
  nav?: boolean;
  render(ctx: PageContext): Promise<void> | void;
}

/** Runs `fn` every `ms` until the page is left. */
export function every(signal: AbortSignal, ms: number, fn: () => void): void {
  const timer = setInterval(fn, ms);
  signal.addEventListener('abort', () => clearInterval(timer));
}
