// Product analytics through the Levqor TypeScript client: page views, CTA clicks
// and newsletter sign-ups go to POST /api/v1/metrics/track on this origin. Nothing
// is sent when the browser asks not to be tracked (Do Not Track or Global Privacy
// Control). UTM parameters of the landing URL are kept for the session
// (sessionStorage) and sent with every event, so a sign-up two pages later is still
// attributed to the campaign that brought the visitor.
import { createLevqorClient, type components } from "@levqor/client";

type EventType = components["schemas"]["EventType"];

const utmKey = "levqor.utm";
const utmNames = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"];

export const api = createLevqorClient({ baseUrl: "" });

/** trackingAllowed is false when the visitor sent Do Not Track or Global Privacy Control. */
export function trackingAllowed(): boolean {
  if (typeof navigator === "undefined") return false;
  const nav = navigator as Navigator & { globalPrivacyControl?: boolean; msDoNotTrack?: string };
  const dnt = nav.doNotTrack ?? (window as Window & { doNotTrack?: string }).doNotTrack ?? nav.msDoNotTrack;
  return !(dnt === "1" || dnt === "yes" || nav.globalPrivacyControl === true);
}

/** captureUTM keeps the UTM parameters of the current URL for the session. */
export function captureUTM(): void {
  const params = new URLSearchParams(window.location.search);
  const kept = new URLSearchParams();
  for (const name of utmNames) {
    const v = params.get(name);
    if (v) kept.set(name, v.slice(0, 200));
  }
  if ([...kept.keys()].length > 0) {
    try {
      sessionStorage.setItem(utmKey, kept.toString());
    } catch {
      // storage disabled: the UTM parameters go with this page's events only
    }
  }
}

/** ref is this page's URL with the session's UTM parameters. */
function ref(): string {
  let utm = "";
  try {
    utm = sessionStorage.getItem(utmKey) ?? "";
  } catch {
    utm = "";
  }
  const url = new URL(window.location.pathname, window.location.origin);
  if (utm) url.search = utm;
  return url.toString();
}

/** track sends one event; it never throws and never delays the page. */
export async function track(type: EventType, payload?: Record<string, string>): Promise<void> {
  if (!trackingAllowed()) return;
  try {
    await api.POST("/api/v1/metrics/track", {
      body: {
        type,
        path: window.location.pathname,
        ref: ref(),
        referrer: document.referrer ? document.referrer.slice(0, 2000) : undefined,
        payload,
      },
      keepalive: true,
    });
  } catch {
    // analytics must never break the page
  }
}
