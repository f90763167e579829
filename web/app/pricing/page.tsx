import type { Metadata } from "next";
import Newsletter from "../../components/Newsletter";
import Plans from "../../components/Plans";

export const metadata: Metadata = {
  title: "Pricing",
  description: "Levqor's plans, their prices and limits, and checkout through Stripe.",
};

export default function Pricing() {
  return (
    <>
      <section aria-labelledby="pricing-title">
        <h1 id="pricing-title">Pricing</h1>
        <p className="lead">Pay for the jobs you run; AI calls are billed at cost and always held inside your budget.</p>
        <Plans checkout heading="h2" />
        <p className="note">
          Paid plans are billed through Stripe; change plan, card or cancel later from the billing portal.
          Questions? Read the <a href="/faq">FAQ</a> and the <a href="/legal/terms">terms</a>.
        </p>
      </section>
      <Newsletter source="pricing" />
    </>
  );
}
