#!/usr/bin/python3
"""Drives the dashboard in headless Chromium (Debian's chromium, chromium-driver and python3-selenium).

    dashboard-check.py DASHBOARD_URL TOKEN SCREENSHOT

Enters the token, reads the live version, starts a deployment (confirming the dialog), waits for its log lines and
for the new version to go live, then rolls back to the previous release and waits for it. Prints one JSON object:
{"first": v1, "deployed": v2, "log_lines": n, "after_rollback": v}. Exits non-zero with a message on any failure.
"""
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

url, token, screenshot = sys.argv[1], sys.argv[2], sys.argv[3]
options = webdriver.ChromeOptions()
for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=420,1400"]:
    options.add_argument(argument)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait(what, check, seconds=180):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception:
            pass
        time.sleep(0.25)
    driver.save_screenshot(screenshot)
    raise SystemExit(f"timed out waiting for {what}; page text: {driver.find_element(By.TAG_NAME, 'body').text[:1500]}")


def live():
    return driver.find_element(By.CSS_SELECTOR, "section.app .live-version").text.strip()


try:
    driver.get(url)
    field = driver.find_element(By.ID, "token")
    field.send_keys(token)
    driver.find_element(By.ID, "save-token").click()
    first = wait("the live version", lambda: live() if live() and live() != "nothing live yet" else None)

    driver.find_element(By.CSS_SELECTOR, "section.app button.deploy").click()
    driver.switch_to.alert.accept()
    lines = wait("log lines of the new deployment",
                 lambda: len([l for l in driver.find_element(By.CSS_SELECTOR, "section.app pre.log").text.splitlines() if "phase:" in l]) >= 2 and
                 len(driver.find_element(By.CSS_SELECTOR, "section.app pre.log").text.splitlines()))
    deployed = wait("the new version to go live", lambda: live() if live() != first else None)

    driver.find_element(By.CSS_SELECTOR, "section.app button.rollback").click()
    driver.switch_to.alert.accept()
    after = wait("the rollback", lambda: live() if live() == first else None)
    time.sleep(1)
    driver.save_screenshot(screenshot)
    print(json.dumps({"first": first, "deployed": deployed, "log_lines": lines, "after_rollback": after}))
finally:
    driver.quit()
