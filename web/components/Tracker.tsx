"use client";

import { useEffect } from "react";
import { captureUTM, track, trackingAllowed } from "../lib/track";

/** Tracker records one page view per page load and keeps the landing URL's UTM parameters. */
export default function Tracker() {
  useEffect(() => {
    if (!trackingAllowed()) return;
    captureUTM();
    void track("page_view");
  }, []);
  return null;
}
