"use client";

import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { createLevqorClient, type components } from "@levqor/client";
import { api, track } from "../lib/track";

type Plan = components["schemas"]["PlanOffer"];
type Load = { kind: "loading" } | { kind: "ready"; plans: Plan[] } | { kind: "failed" };
type State = { kind: "idle" | "sending" | "error"; message: string };

/** price is the plan's price as a visitor reads it, e.g. "$19" and "per month". */
function price(p: Plan): [string, string] {
  const amount = new Intl.NumberFormat("en-US", {
    style: "currency",
    currency: p.currency,
    minimumFractionDigits: p.amount_cents % 100 === 0 ? 0 : 2,
  }).format(p.amount_cents / 100);
  return [amount, p.interval ? `per ${p.interval}` : "forever"];
}

function usd(n: number): string {
  return new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: Number.isInteger(n) ? 0 : 2 }).format(n);
}

/** checkoutMessage turns a checkout refusal into a sentence for the visitor. */
function checkoutMessage(status: number, detail?: string): string {
  switch (status) {
    case 401:
      return "That API key was not accepted. Check it and try again.";
    case 403:
      return "This key cannot start a checkout: it needs the users:write scope and must belong to your user.";
    case 409:
      return "You already have a live subscription. Change plans from the billing portal instead.";
    case 429:
      return "Too many attempts. Please wait a minute and try again.";
    case 503:
      return "Online checkout is not available on this server right now. To start a paid plan, write to support@levqor.ai.";
    default:
      return detail ?? "The checkout could not be started. Please try again.";
  }
}

/**
 * Plans lists the price table from GET /api/v1/billing/plans (fetched in the
 * browser: the site is a static export). With checkout, a paid plan's button opens
 * a form asking for the visitor's Levqor API key, which goes once to
 * POST /api/v1/billing/checkout and is kept nowhere but this form.
 */
export default function Plans({ checkout, heading }: { checkout: boolean; heading: "h2" | "h3" }) {
  const id = useId();
  const [load, setLoad] = useState<Load>({ kind: "loading" });
  const [chosen, setChosen] = useState<Plan | null>(null);
  const [state, setState] = useState<State>({ kind: "idle", message: "" });
  const keyInput = useRef<HTMLInputElement>(null);

  // Choosing a plan opens the form below the list: move the focus there, so keyboard
  // and screen-reader users land on the key field.
  useEffect(() => {
    if (chosen) keyInput.current?.focus();
  }, [chosen]);

  useEffect(() => {
    let live = true;
    api
      .GET("/api/v1/billing/plans")
      .then(({ data }) => live && setLoad(data ? { kind: "ready", plans: data.plans } : { kind: "failed" }))
      .catch(() => live && setLoad({ kind: "failed" }));
    return () => {
      live = false;
    };
  }, []);

  const onSubmit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    if (!chosen) return;
    const form = e.currentTarget;
    const apiKey = String(new FormData(form).get("api_key") ?? "").trim();
    if (!apiKey) {
      setState({ kind: "error", message: "Enter your Levqor API key." });
      return;
    }
    setState({ kind: "sending", message: "Starting the checkout…" });
    try {
      // A client of its own for this one request: the key is not kept after it.
      const client = createLevqorClient({ baseUrl: "", apiKey });
      const { data, error, response } = await client.POST("/api/v1/billing/checkout", { body: { plan: chosen.id } });
      if (data) {
        window.location.assign(data.url);
        return;
      }
      setState({ kind: "error", message: checkoutMessage(response.status, error?.detail) });
    } catch {
      setState({ kind: "error", message: "The checkout could not be reached. Please try again." });
    }
  };

  if (load.kind === "loading") {
    return <p className="note" role="status">Loading the plans…</p>;
  }
  if (load.kind === "failed") {
    return (
      <p className="note" role="status">
        The plans could not be loaded right now. Please try again later, or write to <a href="mailto:support@levqor.ai">support@levqor.ai</a>.
      </p>
    );
  }
  const H = heading;
  return (
    <>
      <ul className="cards plans">
        {load.plans.map((p) => {
          const [amount, per] = price(p);
          return (
            <li key={p.id} className="card" data-plan={p.id} aria-labelledby={`${id}-plan-${p.id}`}>
              <H id={`${id}-plan-${p.id}`}>{p.name}</H>
              <p className="price">{amount} <span>{per}</span></p>
              <ul className="ticks">
                <li>{p.limits.jobs_per_minute.toLocaleString("en-US")} jobs a minute</li>
                <li>{usd(p.limits.daily_ai_usd)} of AI spending a day</li>
                <li>{usd(p.limits.monthly_ai_usd)} of AI spending a month</li>
              </ul>
              {checkout && p.checkout && (
                <button
                  type="button"
                  onClick={() => {
                    setChosen(p);
                    setState({ kind: "idle", message: "" });
                    void track("cta_click", { cta: `checkout-${p.id}` });
                  }}
                >
                  Choose {p.name}
                </button>
              )}
            </li>
          );
        })}
      </ul>
      {checkout && chosen && (
        <form id={`${id}-checkout`} className="checkout" onSubmit={onSubmit} aria-labelledby={`${id}-checkout-title`}>
          <h2 id={`${id}-checkout-title`}>Check out: {chosen.name}</h2>
          <p className="note" id={`${id}-key-note`}>
            Checkout is for your Levqor user: paste an API key of yours with the users:write scope. It is sent once to
            this server to start Stripe&apos;s checkout and is not stored or tracked.
          </p>
          <label htmlFor={`${id}-key`}>Levqor API key</label>
          <div className="row">
            <input ref={keyInput} id={`${id}-key`} name="api_key" type="password" autoComplete="off" spellCheck={false} required
              maxLength={256} aria-describedby={`${id}-key-note`} />
            <button type="submit" disabled={state.kind === "sending"}>Continue to payment</button>
          </div>
          <p className={`status ${state.kind}`} role="status" aria-live="polite">{state.message}</p>
        </form>
      )}
    </>
  );
}
