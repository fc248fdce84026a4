/**
 * Credentials out of anything printed or logged: a store URL (`postgres://user:PASSWORD@host/db`,
 * `?password=…`) shown in a banner, an error or a log line keeps its user, host and path, not its secrets.
 * Works on a URL alone or on a message with URLs inside it.
 */
const USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]*):[^\s/]*@/gi;
const SECRET_PARAMS = /([?&](?:password|passwd|pass|sslpassword|token|secret)=)[^&\s#]*/gi;

export function redactUrl(text: string): string {
  return text.replace(USERINFO, '$1:***@').replace(SECRET_PARAMS, '$1***');
}
