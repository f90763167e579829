"use client";

import type { MouseEvent, ReactNode } from "react";
import { track } from "../lib/track";

/** CTAButton is a link styled as a button that records a CTA click before it navigates. */
export default function CTAButton(props: { href: string; cta: string; variant?: "primary" | "secondary"; children: ReactNode }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) {
      void track("cta_click", { cta: props.cta });
      return;
    }
    e.preventDefault();
    const go = () => window.location.assign(props.href);
    // Navigate when the event is stored, or after 400 ms at most.
    void Promise.race([track("cta_click", { cta: props.cta }), new Promise((r) => setTimeout(r, 400))]).then(go);
  };
  return (
    <a href={props.href} className={`button ${props.variant ?? "primary"}`} data-cta={props.cta} onClick={onClick}>
      {props.children}
    </a>
  );
}
