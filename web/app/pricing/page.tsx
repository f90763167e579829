import type { Metadata } from "next";
import Newsletter from "../../components/Newsletter";
import { plans } from "../../lib/plans";

export const metadata: Metadata = {
  title: "Pricing",
  description: "Levqor's plans: Free, Pro and Scale.",
};

export default function Pricing() {
  return (
    <>
      <section aria-labelledby="pricing-title">
        <h1 id="pricing-title">Pricing</h1>
        <p className="lead">Pay for the jobs you run; AI calls are billed at cost and always held inside your budget.</p>
        <ul className="cards plans">
          {plans.map((p) => (
            <li key={p.id} className="card" aria-labelledby={`plan-${p.id}`}>
              <h2 id={`plan-${p.id}`}>{p.name}</h2>
              <p className="price">{p.price} <span>{p.period}</span></p>
              <p>{p.summary}</p>
              <ul className="ticks">
                {p.features.map((f) => <li key={f}>{f}</li>)}
              </ul>
              {/* Online checkout (POST /api/v1/billing/checkout) is not in the API yet: say so. */}
              <button type="button" disabled aria-describedby="checkout-note">Checkout not available yet</button>
            </li>
          ))}
        </ul>
        <p id="checkout-note" className="note">
          Online checkout is not available yet. To start a paid plan today, write to <a href="mailto:support@levqor.ai">support@levqor.ai</a>.
          Questions? Read the <a href="/faq">FAQ</a> and the <a href="/legal/terms">terms</a>.
        </p>
      </section>
      <Newsletter source="pricing" />
    </>
  );
}
