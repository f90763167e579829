import CTAButton from "../components/CTAButton";
import Newsletter from "../components/Newsletter";
import Plans from "../components/Plans";

const features = [
  { title: "Every step validated", text: "Each step's input is checked against its connector's schema before it runs, and its output before it is recorded." },
  { title: "AI spending on a leash", text: "Every AI call is held inside the job's budget and the owner's daily and monthly limits." },
  { title: "Nothing lost", text: "Jobs are stored before they are acknowledged, run under leases, and retried with backoff after a crash." },
  { title: "One REST API", text: "Spec-first, with generated Go and TypeScript clients, problem+json errors and live job events." },
];

export default function Home() {
  return (
    <>
      <section className="hero" aria-labelledby="hero-title">
        <h1 id="hero-title">AI automation jobs you can trust</h1>
        <p className="lead">Levqor runs your automations — Slack, Notion, Gmail, Telegram, email, HTTP and LLM steps — with validation, budgets and retries built in.</p>
        <div className="actions">
          <CTAButton href="/pricing" cta="hero-pricing">See pricing</CTAButton>
          <CTAButton href="/docs" cta="hero-docs" variant="secondary">Read the API docs</CTAButton>
        </div>
      </section>

      <section aria-labelledby="features-title">
        <h2 id="features-title">Why Levqor</h2>
        <ul className="cards">
          {features.map((f) => (
            <li key={f.title} className="card">
              <h3>{f.title}</h3>
              <p>{f.text}</p>
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="pricing-title">
        <h2 id="pricing-title">Pricing</h2>
        <Plans checkout={false} heading="h3" />
        <p><CTAButton href="/pricing" cta="preview-pricing" variant="secondary">Compare the plans</CTAButton></p>
      </section>

      <Newsletter source="landing" />
    </>
  );
}
