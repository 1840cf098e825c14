import { apiHost } from "./reference.js";

/** The host part of "host:port" / "[v6]:port", lowercased. */
export function hostnameOf(registry: string): string {
  const v6 = /^\[([^\]]+)\]/.exec(registry);
  if (v6) return `[${v6[1]!.toLowerCase()}]`;
  const colon = registry.lastIndexOf(":");
  return (colon === -1 ? registry : registry.slice(0, colon)).toLowerCase();
}

/** localhost, 127.0.0.0/8 and [::1]: traffic that never leaves the machine. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = hostnameOf(registry);
  return host === "localhost" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The base URL of a registry's API. Loopback registries speak plain HTTP; others HTTPS,
 * unless the caller turned TLS verification off, which (as for docker's "insecure
 * registries") means plain HTTP: Node's fetch cannot skip certificate checks per request.
 */
export function registryBaseUrl(registry: string, tlsVerify = true): string {
  const scheme = isLoopbackRegistry(registry) || !tlsVerify ? "http" : "https";
  return `${scheme}://${apiHost(registry)}`;
}
