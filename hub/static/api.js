// REST access for the dashboard: bearer tokens, one refresh-and-retry on 401, problem JSON errors.

const STORE_KEY = "hub.session";

/** An RFC 9457 problem (or a network failure, status 0) with the text to show the user. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `request failed (${status})`);
    this.status = status;
    this.code = problem?.code ?? null;
    this.problem = problem;
  }
}

function expiresAt(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part)).exp * 1000;
  } catch {
    return 0;
  }
}

export class Api {
  /** @param {{onLoggedOut: () => void}} hooks  called when the session is gone for good. */
  constructor(hooks) {
    this.onLoggedOut = hooks.onLoggedOut;
    this.tokens = null;
    this._refreshing = null;
    // The session lives as long as the tab (sessionStorage), so a reload keeps you logged in.
    try {
      this.tokens = JSON.parse(sessionStorage.getItem(STORE_KEY) ?? "null");
    } catch {
      this.tokens = null;
    }
  }

  get loggedIn() {
    return Boolean(this.tokens?.access_token);
  }

  _store(tokens) {
    this.tokens = tokens ? {access_token: tokens.access_token, refresh_token: tokens.refresh_token}
      : null;
    if (this.tokens) sessionStorage.setItem(STORE_KEY, JSON.stringify(this.tokens));
    else sessionStorage.removeItem(STORE_KEY);
  }

  async _fetch(method, path, body, headers = {}) {
    const init = {method, headers: {Accept: "application/json", ...headers}};
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new ApiError(0, {detail: "cannot reach the server"});
    }
    if (response.status === 204) return {response, data: null};
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = {detail: text.slice(0, 200)};
    }
    return {response, data};
  }

  async login(email, password) {
    const {response, data} = await this._fetch("POST", "/api/v1/auth/login", {email, password});
    if (!response.ok) throw new ApiError(response.status, data);
    this._store(data);
  }

  async logout() {
    const refresh = this.tokens?.refresh_token;
    this._store(null);
    if (refresh) {
      try {
        await this._fetch("POST", "/api/v1/auth/logout", {refresh_token: refresh});
      } catch {
        // Logged out locally either way.
      }
    }
  }

  /**
   * Rotate the refresh token once, shared by every caller that needs it meanwhile (presenting a
   * refresh token twice would revoke the whole session). Resolves to the new access token, or
   * null when the session is over; throws ApiError(0) when the server cannot be reached.
   */
  refresh() {
    if (!this._refreshing) {
      this._refreshing = this._refresh().finally(() => {
        this._refreshing = null;
      });
    }
    return this._refreshing;
  }

  async _refresh() {
    const refresh = this.tokens?.refresh_token;
    if (!refresh) return null;
    const {response, data} = await this._fetch("POST", "/api/v1/auth/refresh",
      {refresh_token: refresh});
    if (response.ok) {
      this._store(data);
      return data.access_token;
    }
    if (response.status >= 500) throw new ApiError(response.status, data);
    this._store(null);
    return null;
  }

  /** For the streaming client: a token that will not expire in the next 30 s. */
  async token({refresh = false} = {}) {
    const access = this.tokens?.access_token;
    if (!access) return null;
    if (refresh || expiresAt(access) - Date.now() < 30_000) return this.refresh();
    return access;
  }

  /** An authenticated call: on 401, refresh the tokens once and retry; else log out. */
  async request(method, path, body, headers = {}) {
    for (let attempt = 0; ; attempt++) {
      const access = this.tokens?.access_token;
      if (!access) {
        this.onLoggedOut();
        throw new ApiError(401, {detail: "please log in"});
      }
      const auth = {...headers, Authorization: `Bearer ${access}`};
      const {response, data} = await this._fetch(method, path, body, auth);
      if (response.ok) return data;
      if (response.status === 401 && attempt === 0) {
        // Someone else may have refreshed meanwhile: only refresh if our token is still current.
        const fresh = this.tokens?.access_token !== access ? this.tokens?.access_token
          : await this.refresh();
        if (fresh) continue;
      }
      if (response.status === 401) {
        this._store(null);
        this.onLoggedOut();
      }
      throw new ApiError(response.status, data);
    }
  }

  get(path) {
    return this.request("GET", path);
  }
}
