// The plans shown on the landing and pricing pages. Billing (Stripe checkout) is
// not part of the API yet, so these are the published prices only.
export interface Plan {
  id: string;
  name: string;
  price: string;
  period: string;
  summary: string;
  features: string[];
}

export const plans: Plan[] = [
  {
    id: "free",
    name: "Free",
    price: "$0",
    period: "per month",
    summary: "Try Levqor on your own projects.",
    features: ["1,000 jobs a month", "Every connector", "$2 of AI spending a day", "Community support"],
  },
  {
    id: "pro",
    name: "Pro",
    price: "$29",
    period: "per month",
    summary: "For teams that run automation in production.",
    features: ["50,000 jobs a month", "Workflows and webhooks", "Per-owner AI budgets", "Email support"],
  },
  {
    id: "scale",
    name: "Scale",
    price: "$199",
    period: "per month",
    summary: "PostgreSQL, several instances, and a person to call.",
    features: ["1,000,000 jobs a month", "PostgreSQL + Redis deployment", "Priority support", "Custom limits"],
  },
];
