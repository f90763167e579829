import type { Metadata, Viewport } from "next";
import type { ReactNode } from "react";
import Footer from "../components/Footer";
import Header from "../components/Header";
import Tracker from "../components/Tracker";
import "./globals.css";

export const metadata: Metadata = {
  title: { default: "Levqor — AI automation jobs you can trust", template: "%s — Levqor" },
  description: "Levqor runs your AI automation jobs: validated steps, AI spending held inside a budget, results through one REST API.",
  icons: { icon: "/docs/favicon-32x32.png" },
};

export const viewport: Viewport = { width: "device-width", initialScale: 1 };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <a className="skip" href="#main">Skip to content</a>
        <Header />
        <main id="main" tabIndex={-1}>{children}</main>
        <Footer />
        <Tracker />
      </body>
    </html>
  );
}
