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
 * Where to reach a registry's API, in the order to try. Loopback registries speak plain
 * HTTP; others HTTPS. With TLS verification off (`--tls-verify=false`, docker's "insecure
 * registries"), HTTPS without a certificate check first, then plain HTTP for a registry
 * that does not speak TLS, as skopeo (containers/image) does.
 */
export function registryBaseUrls(registry: string, tlsVerify = true): string[] {
  const host = apiHost(registry);
  if (isLoopbackRegistry(registry)) return [`http://${host}`];
  return tlsVerify ? [`https://${host}`] : [`https://${host}`, `http://${host}`];
}
