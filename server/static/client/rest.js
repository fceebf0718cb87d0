// Part of the Moodboard browser client (../moodboard-client.js): the REST API under /api.

/** An error answered by the REST API (RFC 9457 problem details). */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.code = problem && problem.code;
    this.problem = problem;
  }
}

/**
 * One REST call: `${apiBase}/api${path}` with the bearer `token` (or, without one, the
 * session cookie). The parsed JSON (null for an empty body), or throws ApiError.
 */
export async function restRequest({ apiBase, token }, method, path, body, contentType) {
  const headers = { Accept: "application/json" };
  if (contentType) headers["Content-Type"] = contentType;
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`${apiBase}/api${path}`, { method, headers, body, credentials: "same-origin" });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { detail: `HTTP ${response.status}` }; // a proxy's page, say
  }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}
