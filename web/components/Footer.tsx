export default function Footer() {
  return (
    <footer className="site-footer">
      <div className="bar">
        <p>© Levqor</p>
        <nav aria-label="Legal">
          <ul>
            <li><a href="/faq">FAQ</a></li>
            <li><a href="/legal/privacy">Privacy</a></li>
            <li><a href="/legal/terms">Terms</a></li>
            <li><a href="/legal/cookies">Cookies</a></li>
            <li><a href="/.well-known/security.txt">Security</a></li>
          </ul>
        </nav>
      </div>
    </footer>
  );
}
