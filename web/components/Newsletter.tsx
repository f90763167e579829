"use client";

import { useId, useState, type FormEvent } from "react";
import { api, track } from "../lib/track";

type State = { kind: "idle" | "sending" | "done" | "error"; message: string };

/** Newsletter is the sign-up form: POST /api/v1/newsletter, then a confirmation email (double opt-in). */
export default function Newsletter({ source }: { source: string }) {
  const id = useId();
  const [state, setState] = useState<State>({ kind: "idle", message: "" });

  const onSubmit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const email = String(new FormData(e.currentTarget).get("email") ?? "").trim();
    setState({ kind: "sending", message: "Sending…" });
    try {
      const { error } = await api.POST("/api/v1/newsletter", { body: { email, source } });
      if (error) {
        const detail = error.errors?.[0]?.detail ?? error.detail ?? "Please try again.";
        setState({ kind: "error", message: detail });
        return;
      }
      void track("newsletter", { source });
      setState({ kind: "done", message: "Thanks! Check your inbox: the email has a link to confirm your subscription." });
    } catch {
      setState({ kind: "error", message: "The sign-up could not be sent. Please try again." });
    }
  };

  return (
    <section className="newsletter" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Get the newsletter</h2>
      <p>Product news about once a month. We ask you to confirm by email, and keep no readable copy of your address until you do.</p>
      <form onSubmit={onSubmit} noValidate={false}>
        <label htmlFor={`${id}-email`}>Email address</label>
        <div className="row">
          <input id={`${id}-email`} name="email" type="email" autoComplete="email" required maxLength={254} />
          <button type="submit" disabled={state.kind === "sending"}>Subscribe</button>
        </div>
        <p className={`status ${state.kind}`} role="status" aria-live="polite">{state.message}</p>
      </form>
    </section>
  );
}
