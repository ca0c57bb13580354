/**
 * hull's API errors: one shape for every error under `/hull/v1` (and `/metrics`):
 * `{"status": 404, "code": "HULL_NOT_FOUND", "message": "…"}`. `code` is the HullError's stable code where there is
 * one, else the status's generic code.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { HullError } from '../../common/errors.js';
import { ApiError, messageOf, statusOf } from '../http.js';

const CODES: Record<number, string> = {
  400: 'HULL_INVALID_ARGUMENT',
  401: 'HULL_UNAUTHORIZED',
  403: 'HULL_FORBIDDEN',
  404: 'HULL_NOT_FOUND',
  405: 'HULL_METHOD_NOT_ALLOWED',
  408: 'HULL_TIMEOUT',
  409: 'HULL_CONFLICT',
  413: 'HULL_TOO_LARGE',
  500: 'HULL_ERROR',
};

export interface HullApiError {
  status: number;
  code: string;
  message: string;
}

export function errorBody(e: unknown): HullApiError {
  const status = statusOf(e);
  const code =
    e instanceof ApiError && e.code
      ? e.code
      : e instanceof HullError && status !== 500
        ? e.code
        : (CODES[status] ?? 'HULL_ERROR');
  return { status, code, message: messageOf(e) };
}

export function sendHullError(res: ServerResponse, e: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(`${JSON.stringify(errorBody(e))}\n`);
  res.writeHead(statusOf(e), { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** An error answer on a connection that was to become a WebSocket. */
export function rawHullError(socket: Duplex, e: unknown): void {
  const b = errorBody(e);
  const body = `${JSON.stringify(b)}\n`;
  socket.end(
    `HTTP/1.1 ${b.status} ${b.code}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Whether a path is hull's own API (its errors take hull's shape). */
export const isHullPath = (pathname: string): boolean => pathname.startsWith('/hull/') || pathname === '/metrics';
